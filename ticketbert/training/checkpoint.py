"""Per-epoch checkpoints: model weights as safetensors, trainer state loadable with
``torch.load(weights_only=True)`` (no pickle of arbitrary objects). Written atomically."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

MODEL_FILE = "model.safetensors"
STATE_FILE = "trainer_state.pt"


def save_checkpoint(directory: Path, model: nn.Module, state: dict[str, Any]) -> None:
    """Write ``model``'s weights and the trainer ``state``; replaces the previous one atomically."""
    directory = Path(directory)
    staging = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(staging / MODEL_FILE))
    torch.save(state, staging / STATE_FILE)
    backup = directory.with_name(directory.name + ".old")
    if directory.exists():
        directory.rename(backup)
    staging.rename(directory)
    shutil.rmtree(backup, ignore_errors=True)


def _recover(directory: Path) -> Path:
    """``directory``, put back from its backup when a save was interrupted (SIGINT, SIGTERM)
    between moving the previous checkpoint aside and moving the new one in."""
    directory = Path(directory)
    backup = directory.with_name(directory.name + ".old")
    if not directory.exists() and (backup / STATE_FILE).is_file():
        backup.rename(directory)
    return directory


def has_checkpoint(directory: Path) -> bool:
    return (_recover(directory) / STATE_FILE).is_file()


def checkpoint_state(directory: Path) -> dict[str, Any]:
    """The trainer state of the checkpoint in ``directory`` (read before the model is shaped)."""
    return torch.load(_recover(directory) / STATE_FILE, weights_only=True, map_location="cpu")


def load_weights(directory: Path, model: nn.Module) -> None:
    """Load the checkpoint's weights into ``model`` (strict: shapes must already match)."""
    device = next(model.parameters()).device
    model.load_state_dict(load_file(str(Path(directory) / MODEL_FILE), device=str(device)), strict=True)


def remove_checkpoints(root: Path) -> int:
    """Delete every training checkpoint under ``root`` (weights and optimizer state of the last
    epoch, and any staging or backup copy); a finished run keeps its final model. Returns the
    bytes freed."""
    root = Path(root)
    if not root.is_dir():
        return 0
    found = {path.parent for path in root.rglob(STATE_FILE)}
    found |= {path for path in root.rglob("*") if path.is_dir() and path.name.endswith((".tmp", ".old"))
              and (path / MODEL_FILE).exists()}
    freed = 0
    for directory in found:
        freed += sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
        shutil.rmtree(directory, ignore_errors=True)
    return freed
