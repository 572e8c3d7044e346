"""Device choice, seeding and mixed precision."""

from __future__ import annotations

import contextlib
import random
from typing import Any

import numpy as np
import torch


def select_device(requested: str = "auto") -> torch.device:
    """``auto``: the first visible CUDA device (Ray sets CUDA_VISIBLE_DEVICES per trial), else CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but CUDA is not available")
    return device


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU runs are then deterministic)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def random_states() -> dict[str, Any]:
    """Every random state a run draws from (torch CPU, each CUDA device, numpy, Python), as values
    that ``torch.load(weights_only=True)`` reads back."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached)],
            "python": [version, list(internal), gauss]}


def set_random_states(states: dict[str, Any] | torch.Tensor) -> None:
    """Restore ``random_states()`` (a bare tensor: the CPU state of older checkpoints). CUDA
    states are restored for the devices present in both (none without CUDA)."""
    if isinstance(states, torch.Tensor):
        torch.set_rng_state(states)
        return
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        for index, state in enumerate(states["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, index)
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


_CPU_BF16_FEATURES = ("avx512_bf16", "amx_bf16", "sve_bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively (fast), not by emulation: CUDA devices with
    bf16 support, CPUs with AVX512-BF16, AMX-BF16 or SVE-BF16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        capabilities = torch.cpu.get_capabilities()
        return any(capabilities.get(feature, False) for feature in _CPU_BF16_FEATURES)
    return False


def use_bf16(device: torch.device, setting: bool | str) -> bool:
    """Resolve ``train.bf16`` (``"auto"``, ``True`` or ``False``) for ``device``."""
    return native_bf16(device) if setting == "auto" else bool(setting)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled``; a no-op otherwise."""
    if enabled:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
