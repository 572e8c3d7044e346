"""Thin adapters from ticketbert's pruners to other frameworks' training loops
(``integrations.transformers``: the Hugging Face ``Trainer``)."""
