"""Device choice, seeding and mixed precision."""

from __future__ import annotations

import contextlib
import random

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
