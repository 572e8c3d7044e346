"""Encoders (bundled MiniLM or any BERT-family checkpoint), pooling and the task model."""

from ticketbert.models.encoder import load_encoder, load_tokenizer, pool, resolve_encoder
from ticketbert.models.model import TicketBertModel, build_model

__all__ = ["TicketBertModel", "build_model", "load_encoder", "load_tokenizer", "pool", "resolve_encoder"]
