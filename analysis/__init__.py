"""The checkout's short name for the analyses: ``python -m analysis`` runs ``python -m ticketbert.analysis``."""
