"""Structured units of a BERT encoder (attention heads, FFN neurons, whole layers): their
weight counts, gates that scale them in place (for scoring and masked equivalence), and
their physical removal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ticketbert.models.compute import effective_weight
from ticketbert.models.structure import encoder_layers, keep_heads, keep_layers, keep_neurons, record_structure

UNIT_KINDS = ("heads", "ffn", "layers")


def _check_kind(kind: str) -> None:
    if kind not in UNIT_KINDS:
        raise ValueError(f"unknown structured unit {kind!r}; known: {UNIT_KINDS}")


def units_per_layer(encoder: nn.Module, kind: str) -> list[int]:
    """How many units of ``kind`` each layer holds (1 per layer for ``layers``)."""
    _check_kind(kind)
    layers = encoder_layers(encoder)
    if kind == "heads":
        return [layer.attention.self.num_attention_heads for layer in layers]
    if kind == "ffn":
        return [layer.intermediate.dense.out_features for layer in layers]
    return [1] * len(layers)


def layer_weight_count(layer: nn.Module) -> int:
    """Prunable weights of one layer (its six matrices)."""
    attention = layer.attention.self
    matrices = [layer.attention.output.dense, layer.intermediate.dense, layer.output.dense]
    matrices += [getattr(attention, n) for n in ("query", "key", "value") if hasattr(attention, n)]
    return sum(m.weight.numel() if not hasattr(m, "weight_orig") else m.weight_orig.numel() for m in matrices)


def unit_weight_counts(encoder: nn.Module, kind: str) -> list[torch.Tensor]:
    """Prunable weights each unit holds, per layer: a head 4*hidden*head_size (Q, K, V rows
    and output columns), a neuron 2*hidden, a layer all six matrices."""
    layers = encoder_layers(encoder)
    hidden = encoder.config.hidden_size
    counts = []
    for layer, n in zip(layers, units_per_layer(encoder, kind)):
        if kind == "heads":
            size = 4 * hidden * layer.attention.self.attention_head_size
        elif kind == "ffn":
            size = 2 * hidden
        else:
            size = layer_weight_count(layer)
        counts.append(torch.full((n,), float(size)))
    return counts


@torch.no_grad()
def l1_unit_scores(encoder: nn.Module, kind: str) -> list[torch.Tensor]:
    """L1 norm of every unit's weights (the structured twin of magnitude pruning)."""
    scores = []
    for layer in encoder_layers(encoder):
        attention = layer.attention.self
        if kind == "heads":
            size, n = attention.attention_head_size, attention.num_attention_heads
            if n == 0:
                scores.append(torch.zeros(0))
                continue
            rows = sum(effective_weight(getattr(attention, m)).abs().sum(1) for m in ("query", "key", "value"))
            cols = effective_weight(layer.attention.output.dense).abs().sum(0)
            scores.append((rows + cols).view(n, size).sum(1).float().cpu())
        elif kind == "ffn":
            rows = effective_weight(layer.intermediate.dense).abs().sum(1)
            cols = effective_weight(layer.output.dense).abs().sum(0)
            scores.append((rows + cols).float().cpu())
        else:
            matrices = [layer.attention.output.dense, layer.intermediate.dense, layer.output.dense]
            matrices += [getattr(attention, m) for m in ("query", "key", "value") if hasattr(attention, m)]
            scores.append(torch.stack([effective_weight(m).abs().sum() for m in matrices]).sum().view(1).float().cpu())
    return scores


@contextlib.contextmanager
def unit_gates(encoder: nn.Module, kind: str, requires_grad: bool = False) -> Iterator[list[torch.Tensor]]:
    """Gates (one tensor of ones per layer, one entry per unit) that scale each unit's output.

    A head's gate scales its slice of the context before the attention output projection, a
    neuron's gate its activation before the FFN output projection, and a layer's gate its
    residual update (``x + g * (layer(x) - x)``). Gate 0 is exactly the unit's removal; the
    gradient with respect to a gate is Michel et al.'s head-importance signal.
    """
    _check_kind(kind)
    layers = encoder_layers(encoder)
    device = next(encoder.parameters()).device
    gates = [torch.ones(n, device=device, requires_grad=requires_grad) for n in units_per_layer(encoder, kind)]
    handles = []
    for layer, gate in zip(layers, gates):
        if kind == "heads":
            if gate.numel() == 0:
                continue
            size = layer.attention.self.attention_head_size

            def scale_heads(module, args, gate=gate, size=size):
                return (args[0] * gate.repeat_interleave(size).to(args[0].dtype),)

            handles.append(layer.attention.output.dense.register_forward_pre_hook(scale_heads))
        elif kind == "ffn":
            def scale_neurons(module, args, gate=gate):
                return (args[0] * gate.to(args[0].dtype),)

            handles.append(layer.output.dense.register_forward_pre_hook(scale_neurons))
        else:
            def scale_layer(module, args, kwargs, output, gate=gate):
                hidden = args[0] if args else kwargs["hidden_states"]
                out = output[0] if isinstance(output, tuple) else output
                mixed = hidden + gate.to(out.dtype) * (out - hidden)
                return (mixed, *output[1:]) if isinstance(output, tuple) else mixed

            handles.append(layer.register_forward_hook(scale_layer, with_kwargs=True))
    try:
        yield gates
    finally:
        for handle in handles:
            handle.remove()


def remove_units(encoder: nn.Module, kind: str, removed: dict[int, list[int]]) -> None:
    """Physically remove units: ``removed[layer] = [unit indices]`` (for ``layers``: ``[0]``).
    The encoder becomes smaller and its config records the new per-layer shape."""
    layers = encoder_layers(encoder)
    counts = units_per_layer(encoder, kind)
    if kind == "layers":
        keep_layers(encoder, [i for i in range(len(layers)) if i not in removed])
    else:
        for i, layer in enumerate(layers):
            if removed.get(i):
                gone = set(removed[i])
                kept = [u for u in range(counts[i]) if u not in gone]
                (keep_heads if kind == "heads" else keep_neurons)(layer, kept)
    record_structure(encoder)
