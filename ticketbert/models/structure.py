"""Shape surgery on BERT-family encoders: keep a subset of heads, FFN neurons or layers.

transformers v5 dropped ``prune_heads``; these functions replace it and record the
resulting per-layer shape in the model config so that a saved model reloads.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

STRUCTURE_KEY = "ticketbert_structure"


class EmptySelfAttention(nn.Module):
    """Self-attention with no heads left: a zero-width context, so the attention block's
    output is ``LayerNorm(dense.bias + hidden_states)``, as with every head masked."""

    num_attention_heads = 0

    def __init__(self, attention_head_size: int):
        super().__init__()
        self.attention_head_size = attention_head_size
        self.all_head_size = 0

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        return hidden_states.new_zeros(*hidden_states.shape[:-1], 0), None


def encoder_layers(encoder: nn.Module) -> nn.ModuleList:
    """The transformer layers of a BERT-family model (``encoder.layer``)."""
    try:
        return encoder.encoder.layer
    except AttributeError:
        raise TypeError(f"{type(encoder).__name__} is not a BERT-family encoder (no .encoder.layer)") from None


def _slice_linear(linear: nn.Linear, keep: torch.Tensor, dim: int) -> nn.Linear:
    """A new Linear keeping ``keep`` along output rows (dim 0) or input columns (dim 1)."""
    weight = linear.weight.detach().index_select(dim, keep.to(linear.weight.device)).clone()
    out_features, in_features = weight.shape
    new = nn.Linear(in_features, out_features, bias=linear.bias is not None,
                    device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if linear.bias is not None:
            bias = linear.bias.detach()
            new.bias.copy_(bias.index_select(0, keep.to(bias.device)) if dim == 0 else bias)
    return new


def keep_heads(layer: nn.Module, heads: Sequence[int]) -> None:
    """Keep only attention ``heads`` (indices into the layer's current heads)."""
    attention = layer.attention.self
    size = attention.attention_head_size
    heads = sorted(set(int(h) for h in heads))
    if not heads:
        layer.attention.self = EmptySelfAttention(size)
        layer.attention.output.dense = _slice_linear(layer.attention.output.dense, torch.arange(0), 1)
        return
    rows = torch.cat([torch.arange(h * size, (h + 1) * size) for h in heads])
    for name in ("query", "key", "value"):
        setattr(attention, name, _slice_linear(getattr(attention, name), rows, 0))
    layer.attention.output.dense = _slice_linear(layer.attention.output.dense, rows, 1)
    attention.num_attention_heads = len(heads)
    attention.all_head_size = len(heads) * size


def keep_neurons(layer: nn.Module, neurons: Sequence[int]) -> None:
    """Keep only FFN intermediate ``neurons`` (indices into the layer's current ones)."""
    keep = torch.tensor(sorted(set(int(n) for n in neurons)), dtype=torch.long)
    layer.intermediate.dense = _slice_linear(layer.intermediate.dense, keep, 0)
    layer.output.dense = _slice_linear(layer.output.dense, keep, 1)


def keep_layers(encoder: nn.Module, layers: Sequence[int]) -> None:
    """Keep only transformer ``layers``, in order."""
    module_list = encoder_layers(encoder)
    encoder.encoder.layer = nn.ModuleList([module_list[i] for i in sorted(set(int(i) for i in layers))])


def heads_per_layer(encoder: nn.Module) -> list[int]:
    return [layer.attention.self.num_attention_heads for layer in encoder_layers(encoder)]


def intermediate_sizes(encoder: nn.Module) -> list[int]:
    return [layer.intermediate.dense.out_features for layer in encoder_layers(encoder)]


def record_structure(encoder: nn.Module) -> dict[str, list[int]]:
    """Write the current per-layer shape into ``encoder.config`` (saved by save_pretrained)."""
    structure = {"heads_per_layer": heads_per_layer(encoder), "intermediate_sizes": intermediate_sizes(encoder)}
    config = encoder.config
    config.num_hidden_layers = len(structure["heads_per_layer"])
    setattr(config, STRUCTURE_KEY, structure)
    return structure


def apply_structure(encoder: nn.Module, structure: dict[str, list[int]]) -> None:
    """Reshape a freshly built full-size encoder to a recorded structure (weights are then loaded)."""
    layers = encoder_layers(encoder)
    if len(layers) != len(structure["heads_per_layer"]):
        raise ValueError(f"structure has {len(structure['heads_per_layer'])} layers, model {len(layers)}")
    for layer, heads, width in zip(layers, structure["heads_per_layer"], structure["intermediate_sizes"]):
        keep_heads(layer, range(heads))
        keep_neurons(layer, range(width))
