"""Saving and reloading models, pruned or not: safetensors + config, no pickle.

Layout of a saved directory:
- a Hugging Face model (base or task model): ``save_pretrained``'s ``config.json`` +
  ``model.safetensors``, the encoder's per-layer heads and FFN widths recorded in the config,
  masked weights baked in; ``load_pruned`` returns the same class at the same shapes;
- a task model (``saved_meta``/``from_saved``, e.g. ticketbert's TicketBertModel): its encoder so in
  ``encoder/``, plus ``heads.safetensors`` and ``ticketbert.json`` (its class, settings and task definitions);
- any other module: ``model.safetensors`` (its state dict); reload with ``load_pruned(path, model=...)``;
- ``masks.safetensors`` when unstructured masks are attached, so that reloaded masks stay enforced.

``compress=True`` stores each masked matrix as its kept values plus a bitmask in
``sparse.safetensors`` (``ticketbert.pruning.sparse_storage``) instead of densely in the state
file, and no ``masks.safetensors`` (the bitmasks are the masks); only ``load_pruned`` reads
that layout back (``from_pretrained`` would miss those matrices).
"""

from __future__ import annotations

import copy
import json
from importlib import import_module
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel

from ticketbert.layout import HEADS_FILE, META_FILE, STATE_FILE
from ticketbert.models.encoder import load_encoder, load_structured
from ticketbert.models.families import find_encoder
from ticketbert.models.structure import record_structure
from ticketbert.pruning.masks import attach_masks, attached_masks, bake_masks, pruning_root
from ticketbert.pruning.sparse_storage import SparseMatrix, read_sparse, write_sparse

MASKS_FILE = "masks.safetensors"


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


def _state_key(model: nn.Module, mask_key: str) -> str:
    """The name in ``model.state_dict()`` of the weight masked under ``mask_key``."""
    root = pruning_root(model)
    prefix = next(name for name, module in model.named_modules() if module is root)
    return f"{prefix}.{mask_key}" if prefix else mask_key


def _sparse_matrices(model: nn.Module) -> list[SparseMatrix]:
    """Every masked matrix of ``model`` (masks still attached) as kept values and a bitmask."""
    root = pruning_root(model)
    return [SparseMatrix.encode(_state_key(model, key), key, root.get_submodule(key.removesuffix(".weight")).weight_orig,
                                mask) for key, mask in attached_masks(model).items()]


def _save_plain(model: nn.Module, path: Path, compress: bool = False) -> None:
    """``model`` with masks baked and structure recorded: ``save_pretrained`` or a state dict;
    ``compress``: masked matrices in the sparse file instead."""
    for module in model.modules():  # the masked weight a forward left behind is a graph node: no deepcopy
        if hasattr(module, "weight_mask"):
            module.weight = (module.weight_orig * module.weight_mask).detach()
    plain = copy.deepcopy(model)
    sparse = _sparse_matrices(plain) if compress else []
    bake_masks(plain)
    encoder = find_encoder(plain, strict=False)
    if encoder is not None:
        record_structure(encoder)
    dropped = {m.key for m in sparse}
    state = {k: v for k, v in plain.state_dict().items() if k not in dropped}
    if isinstance(plain, PreTrainedModel):
        plain.save_pretrained(path, state_dict=state)
    else:
        save_file(_contiguous(state), str(path / STATE_FILE))
    if sparse:
        write_sparse(sparse, path)


def _with_sparse(state: dict, path: Path) -> tuple[dict, dict]:
    """``state`` completed by the sparse file's matrices, and their masks (empty without one)."""
    matrices = read_sparse(path)
    return {**state, **{m.key: m.decode() for m in matrices}}, {m.mask_key: m.keep for m in matrices}


def save_pruned(model: nn.Module, path: str | Path, compress: bool = False) -> Path:
    """Save a (pruned) model to directory ``path``; ``load_pruned`` reloads it. ``compress``:
    masked matrices as kept values + bitmask (``storage_report`` gives the bytes)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "saved_meta"):
        (path / "encoder").mkdir(exist_ok=True)
        _save_plain(model.encoder, path / "encoder", compress)
        if not compress:
            _save_masks(model, path / "encoder")
        save_file(_contiguous(model.heads.state_dict()), str(path / HEADS_FILE))
        (path / META_FILE).write_text(json.dumps(model.saved_meta(), indent=2))
    else:
        _save_plain(model, path, compress)
        if not compress:
            _save_masks(model, path)
    return path


def load_pruned(path: str | Path, model: nn.Module | None = None) -> nn.Module:
    """Reload what ``save_pruned`` wrote: same class, shapes, weights, masks and outputs.
    A module that is neither a Hugging Face model nor a task model is loaded into ``model``."""
    path = Path(path)
    if model is not None:
        state, masks = _with_sparse(load_file(str(path / STATE_FILE)), path)
        model.load_state_dict(state, strict=True)
        attach_masks(model, masks)
        return _load_masks(model, path)
    if (path / META_FILE).is_file():
        meta = json.loads((path / META_FILE).read_text())
        module, _, name = meta.get("class", "ticketbert.tasks.model:TicketBertModel").partition(":")
        encoder = _load_masks(_load_hf(path / "encoder", load_encoder), path / "encoder")
        loaded = getattr(import_module(module), name).from_saved(encoder, meta)
        loaded.heads.load_state_dict(load_file(str(path / HEADS_FILE)), strict=True)
        return loaded
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: no config.json (a Hugging Face model) or {META_FILE}; a plain module's "
                                f"weights load with load_pruned(path, model=<an instance>)")
    return _load_masks(_load_hf(path, load_structured), path)


def _load_hf(path: Path, loader) -> nn.Module:
    """``loader(path)`` (``load_structured`` or ``load_encoder``), completed by a sparse file's
    matrices and their masks when ``path`` holds one."""
    if not read_sparse(path):
        return loader(str(path))
    state, masks = _with_sparse(load_file(str(path / STATE_FILE)), path)
    model = loader(str(path), state=state)
    attach_masks(model, masks)
    return model
