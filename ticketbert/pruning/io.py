"""Saving and reloading models, pruned or not: safetensors + config, no pickle.

Layout of a saved directory:
- a Hugging Face model (base or task model): ``save_pretrained``'s ``config.json`` +
  ``model.safetensors``, the encoder's per-layer heads and FFN widths recorded in the config,
  masked weights baked in; ``load_pruned`` returns the same class at the same shapes;
- a task model (``saved_meta``/``from_saved``, e.g. ticketbert's TicketBertModel): its encoder so in
  ``encoder/``, plus ``heads.safetensors`` and ``ticketbert.json`` (its class, settings and task definitions);
- any other module: ``model.safetensors`` (its state dict); reload with ``load_pruned(path, model=...)``;
- ``masks.safetensors`` when unstructured masks are attached, so that reloaded masks stay enforced.
"""

from __future__ import annotations

import copy
import json
from importlib import import_module
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel

from ticketbert.models.encoder import load_encoder, load_structured
from ticketbert.models.families import find_encoder
from ticketbert.models.structure import record_structure
from ticketbert.pruning.masks import attach_masks, attached_masks, bake_masks

MASKS_FILE = "masks.safetensors"
HEADS_FILE = "heads.safetensors"
META_FILE = "ticketbert.json"
STATE_FILE = "model.safetensors"


def _contiguous(state: dict) -> dict:
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def _save_masks(model: nn.Module, path: Path) -> None:
    masks = attached_masks(model)
    if masks:
        save_file(_contiguous(masks), str(path / MASKS_FILE))


def _load_masks(model: nn.Module, path: Path) -> nn.Module:
    if (path / MASKS_FILE).is_file():
        attach_masks(model, load_file(str(path / MASKS_FILE)))
    return model


def _save_plain(model: nn.Module, path: Path) -> None:
    """``model`` with masks baked and structure recorded: ``save_pretrained`` or a state dict."""
    for module in model.modules():  # the masked weight a forward left behind is a graph node: no deepcopy
        if hasattr(module, "weight_mask"):
            module.weight = (module.weight_orig * module.weight_mask).detach()
    plain = copy.deepcopy(model)
    bake_masks(plain)
    encoder = find_encoder(plain, strict=False)
    if encoder is not None:
        record_structure(encoder)
    if isinstance(plain, PreTrainedModel):
        plain.save_pretrained(path)
    else:
        save_file(_contiguous(plain.state_dict()), str(path / STATE_FILE))


def save_pruned(model: nn.Module, path: str | Path) -> Path:
    """Save a (pruned) model to directory ``path``; ``load_pruned`` reloads it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "saved_meta"):
        (path / "encoder").mkdir(exist_ok=True)
        _save_plain(model.encoder, path / "encoder")
        _save_masks(model, path / "encoder")
        save_file(_contiguous(model.heads.state_dict()), str(path / HEADS_FILE))
        (path / META_FILE).write_text(json.dumps(model.saved_meta(), indent=2))
    else:
        _save_plain(model, path)
        _save_masks(model, path)
    return path


def load_pruned(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """Reload what ``save_pruned`` wrote: same class, shapes, weights, masks and outputs.
    A module that is neither a Hugging Face model nor a task model is loaded into ``model``."""
    path = Path(path)
    if model is not None:
        model.load_state_dict(load_file(str(path / STATE_FILE)), strict=True)
        return _load_masks(model, path)
    if (path / META_FILE).is_file():
        meta = json.loads((path / META_FILE).read_text())
        module, _, name = meta.get("class", "ticketbert.tasks.model:TicketBertModel").partition(":")
        encoder = _load_masks(load_encoder(str(path / "encoder")), path / "encoder")
        loaded = getattr(import_module(module), name).from_saved(encoder, meta)
        loaded.heads.load_state_dict(load_file(str(path / HEADS_FILE)), strict=True)
        return loaded
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: no config.json (a Hugging Face model) or {META_FILE}; a plain module's "
                                f"weights load with load_pruned(path, model=<an instance>)")
    return _load_masks(load_structured(path), path)
