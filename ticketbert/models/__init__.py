"""Encoders (bundled MiniLM or any BERT-family checkpoint) and pooling."""

from ticketbert.models.encoder import load_encoder, load_tokenizer, pool, resolve_encoder

__all__ = ["load_encoder", "load_tokenizer", "pool", "resolve_encoder"]
