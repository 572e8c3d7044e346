"""Compute accounting: parameters, FLOPs per token and measured latency of a model."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from ticketbert.models.families import Encoder, find_encoder, present

LINEAR_TYPES = (nn.Linear, Conv1D)  # weight matrices of "any other module"
FLOPS_SEQ_LEN = 128  # the sequence length FLOPs per token are reported at


def effective_weight(linear: nn.Module) -> torch.Tensor:
    """The weight as used in forward: ``weight_orig * weight_mask`` under a pruning mask."""
    if hasattr(linear, "weight_mask"):
        return linear.weight_orig * linear.weight_mask
    return linear.weight


def encoder_linears(encoder: Encoder) -> dict[str, nn.Linear]:
    """The prunable matrices of every layer of ``encoder`` (attention inputs and output, FFN
    inputs and output), keyed by their module path inside the encoder."""
    family, linears = encoder.family, {}
    projections = (*family.head_inputs, family.head_output, *family.ffn_inputs, family.ffn_output)
    for i, layer in enumerate(encoder.layers()):
        for projection in present(projections, layer):
            try:
                linears[f"{family.layers_path}.{i}.{projection.path}"] = projection.linear(layer)
            except AttributeError:  # a layer whose attention has no heads left
                continue
    return linears


def prunable_linears(model: nn.Module) -> dict[str, nn.Module]:
    """What "sparsity" counts, per model kind: in a model holding a supported encoder, the
    encoder layers' attention and FFN matrices (keyed inside the encoder; embeddings, heads and
    biases excluded); in any other module, every ``nn.Linear`` (and transformers' ``Conv1D``,
    GPT-2's linear layer) but those whose weight is tied to another module's (an LM head
    sharing the embedding matrix), keyed inside ``model``."""
    encoder = find_encoder(model, strict=False)
    if encoder is not None:
        return encoder_linears(encoder)
    owners: dict[int, int] = {}
    for module in model.modules():
        weight = getattr(module, "weight_orig", getattr(module, "weight", None))
        if isinstance(weight, nn.Parameter):
            owners[id(weight)] = owners.get(id(weight), 0) + 1
    return {name: module for name, module in model.named_modules()
            if isinstance(module, LINEAR_TYPES) and owners[id(getattr(module, "weight_orig", module.weight))] == 1}


@torch.no_grad()
def count_prunable(model: nn.Module, nonzero: bool = True) -> int:
    """Weights of the prunable matrices: all of them, or the non-zero ones."""
    total = 0
    for linear in prunable_linears(model).values():
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


def attention_flops_per_token(model: nn.Module, seq_len: int) -> float:
    """Scores (QK^T) and weighted values (AV) per token at sequence length ``seq_len``."""
    encoder = find_encoder(model, strict=False)
    if encoder is None:
        return 0.0
    family = encoder.family
    return float(sum(4 * family.attention_span(layer, seq_len) * family.num_heads(layer) * family.head_size(layer)
                     for layer in encoder.layers()))


def linear_flops_per_token(model: nn.Module) -> float:
    """Multiply-adds of the non-zero prunable weights (2 FLOPs each) per token."""
    return 2.0 * count_prunable(model, nonzero=True)


def flops_per_token(model: nn.Module, seq_len: int = FLOPS_SEQ_LEN) -> float:
    """Forward FLOPs per token of the encoder's layers (embeddings and heads are negligible)."""
    return linear_flops_per_token(model) + attention_flops_per_token(model, seq_len)


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
