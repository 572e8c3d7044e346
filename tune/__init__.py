"""The checkout's short names for the sweep: ``python -m tune.sweep`` runs ``python -m ticketbert.sweep``."""
