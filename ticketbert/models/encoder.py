"""Loading BERT-family encoders and their tokenizers (bundled MiniLM, hub id or directory)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
import transformers
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel

from ticketbert.defaults import resolve_encoder
from ticketbert.models.families import require_encoder
from ticketbert.models.structure import STRUCTURE_KEY, apply_structure


def load_tokenizer(name: str):
    """The encoder's tokenizer."""
    return AutoTokenizer.from_pretrained(resolve_encoder(name))


def _model_class(config):
    """The class a saved config names (``architectures``), else ``AutoModel`` (the base model)."""
    for name in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, name, None)
        if cls is not None:
            return cls
    return AutoModel


def load_structured(path: str | Path, state: dict[str, torch.Tensor] | None = None) -> PreTrainedModel:
    """A Hugging Face model saved by ``save_pretrained``, pruned or not: a config recording
    per-layer heads and FFN widths (``ticketbert_structure``) is rebuilt at those shapes first.
    The class is the one saved (a task model comes back as that task model). ``state``: the
    weights to load instead of the directory's ``model.safetensors``."""
    config = AutoConfig.from_pretrained(path)
    structure = getattr(config, STRUCTURE_KEY, None)
    if structure is None and state is None:
        return _model_class(config).from_pretrained(path)
    cls = _model_class(config)
    model = AutoModel.from_config(config) if cls is AutoModel else cls._from_config(config)
    if structure is not None:
        apply_structure(require_encoder(model, "a saved structure"), structure)
    if state is None:
        state = load_file(str(Path(path) / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    model.tie_weights()
    own = model.state_dict()
    loaded = {own[k].data_ptr() for k in state if k in own}
    # tied weights (an MLM decoder) are saved once; ticketbert's own encoders are saved without a pooler
    untied = [k for k in missing if own[k].data_ptr() not in loaded and ".pooler." not in f".{k}"]
    if unexpected or untied:
        raise ValueError(f"{path}: weights do not match the saved structure (unexpected {unexpected[:3]}, "
                         f"missing {untied[:3]})")
    return model.eval()


def load_encoder(name: str, state: dict[str, torch.Tensor] | None = None) -> PreTrainedModel:
    """A BERT-family encoder without its pooler (ticketbert pools itself): the bundled MiniLM,
    a hub id or a directory (one written by ``save_pruned`` reloads at its pruned shapes;
    ``state``: see ``load_structured``)."""
    encoder = load_structured(resolve_encoder(name), state).base_model
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder.eval()  # as from_pretrained returns it


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, method: str) -> torch.Tensor:
    """Sentence embedding: the first token (``cls``) or the mask-weighted mean (``mean``)."""
    if method == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
