"""Saving and reloading models, pruned or not: safetensors + config, no pickle.

Layout of a saved directory:
- a plain encoder: ``config.json`` + ``model.safetensors`` (``save_pretrained``), the
  per-layer heads and FFN widths recorded in the config, masked weights baked in;
- a TicketBertModel: that in ``encoder/``, plus ``heads.safetensors`` and ``ticketbert.json``;
- ``masks.safetensors`` when unstructured masks are attached, so that reloaded masks stay enforced.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from ticketbert.config import ModelConfig
from ticketbert.models.encoder import load_encoder
from ticketbert.models.model import TicketBertModel
from ticketbert.models.structure import record_structure
from ticketbert.pruning.masks import attach_masks, attached_masks, bake_masks
from ticketbert.tasks import get_task

MASKS_FILE = "masks.safetensors"
HEADS_FILE = "heads.safetensors"
META_FILE = "ticketbert.json"


def _save_encoder(encoder: nn.Module, path: Path) -> None:
    masks = attached_masks(encoder)
    plain = copy.deepcopy(encoder)
    bake_masks(plain)
    record_structure(plain)
    plain.save_pretrained(path)
    if masks:
        save_file({k: v.to("cpu").contiguous() for k, v in masks.items()}, str(path / MASKS_FILE))


def _load_encoder(path: Path) -> nn.Module:
    encoder = load_encoder(str(path))
    if (path / MASKS_FILE).is_file():
        attach_masks(encoder, load_file(str(path / MASKS_FILE)))
    return encoder


def save_pruned(model: nn.Module, path: str | Path) -> Path:
    """Save a (pruned) encoder or TicketBertModel to directory ``path``; ``load_pruned`` reloads it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if isinstance(model, TicketBertModel):
        _save_encoder(model.encoder, path / "encoder")
        heads = {k: v.detach().cpu().contiguous() for k, v in model.heads.state_dict().items()}
        save_file(heads, str(path / HEADS_FILE))
        meta = {"tasks": model.tasks, "model": model.config.model_dump(mode="json")}
        (path / META_FILE).write_text(json.dumps(meta, indent=2))
    else:
        _save_encoder(model, path)
    return path


def load_pruned(path: str | Path) -> nn.Module:
    """Reload what ``save_pruned`` wrote: same shapes, weights, masks and outputs."""
    path = Path(path)
    if not (path / META_FILE).is_file():
        return _load_encoder(path)
    meta = json.loads((path / META_FILE).read_text())
    config = ModelConfig.model_validate(meta["model"])
    encoder = _load_encoder(path / "encoder")
    heads = {name: get_task(name).build_head(encoder.config.hidden_size, config) for name in meta["tasks"]}
    model = TicketBertModel(encoder, heads, config)
    model.heads.load_state_dict(load_file(str(path / HEADS_FILE)), strict=True)
    return model
