"""Compute accounting: parameters, FLOPs per token and measured latency of an encoder."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from ticketbert.models.structure import encoder_layers


def effective_weight(linear: nn.Linear) -> torch.Tensor:
    """The weight as used in forward: ``weight_orig * weight_mask`` under a pruning mask."""
    if hasattr(linear, "weight_mask"):
        return linear.weight_orig * linear.weight_mask
    return linear.weight


def prunable_linears(encoder: nn.Module) -> dict[str, nn.Linear]:
    """The six weight matrices of every layer (Q, K, V, attention output, FFN in and out),
    keyed by their parameter path inside ``encoder``."""
    linears = {}
    for i, layer in enumerate(encoder_layers(encoder)):
        prefix = f"encoder.layer.{i}"
        attention = layer.attention.self
        for name in ("query", "key", "value"):
            if hasattr(attention, name):
                linears[f"{prefix}.attention.self.{name}"] = getattr(attention, name)
        linears[f"{prefix}.attention.output.dense"] = layer.attention.output.dense
        linears[f"{prefix}.intermediate.dense"] = layer.intermediate.dense
        linears[f"{prefix}.output.dense"] = layer.output.dense
    return linears


@torch.no_grad()
def count_prunable(encoder: nn.Module, nonzero: bool = True) -> int:
    """Weights of the prunable matrices: all of them, or the non-zero ones."""
    total = 0
    for linear in prunable_linears(encoder).values():
        weight = effective_weight(linear)
        total += int(torch.count_nonzero(weight)) if nonzero else weight.numel()
    return total


@torch.no_grad()
def count_parameters(module: nn.Module, nonzero: bool = True) -> int:
    """Parameters of ``module`` (non-zero ones by default, masked weights counted as used)."""
    total = 0
    for name, param in module.named_parameters():
        if name.endswith("_orig"):
            owner = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
            param = param * getattr(owner, name.rsplit(".", 1)[-1].replace("_orig", "_mask"))
        total += int(torch.count_nonzero(param)) if nonzero else param.numel()
    return total


def attention_flops_per_token(encoder: nn.Module, seq_len: int) -> float:
    """Scores (QK^T) and weighted values (AV) per token at sequence length ``seq_len``."""
    return float(sum(4 * seq_len * layer.attention.self.all_head_size for layer in encoder_layers(encoder)))


def linear_flops_per_token(encoder: nn.Module) -> float:
    """Multiply-adds of the non-zero prunable weights (2 FLOPs each) per token."""
    return 2.0 * count_prunable(encoder, nonzero=True)


def flops_per_token(encoder: nn.Module, seq_len: int = 128) -> float:
    """Forward FLOPs per token of the encoder's layers (embeddings and heads are negligible)."""
    return linear_flops_per_token(encoder) + attention_flops_per_token(encoder, seq_len)


@torch.no_grad()
def measure_latency(calls: list, device: torch.device, *, warmup: int = 2, repeats: int = 10) -> list[float]:
    """Median wall time in ms of each of ``calls``, timed interleaved (call 1, call 2, ...,
    repeated) so that load drifting on the machine affects all alike; CUDA is synchronised."""

    def timed(call) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return (time.perf_counter() - start) * 1e3

    for _ in range(warmup):
        for call in calls:
            timed(call)
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for call, times in zip(calls, samples):
            times.append(timed(call))
    return [statistics.median(times) for times in samples]
