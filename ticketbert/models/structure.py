"""Shape surgery on encoders: keep a subset of heads, FFN neurons or layers, in place.

transformers v5 dropped ``prune_heads``; these functions replace it for every registered
family (``models/families``) and record the resulting per-layer shape in the model config so
that a saved model reloads. Modules are reshaped in place; each cut parameter is replaced by a
smaller one and returned as a ``Cut`` (old, new, which indices along which dim), so that
``ticketbert.pruning.optim`` can move an optimizer onto the new parameters with its state cut alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ticketbert.layout import STRUCTURE_KEY
from ticketbert.models.families import Encoder, Projection, present



@dataclass(frozen=True)
class Cut:
    """Parameter ``old`` was replaced by ``new``: its entries ``index`` along ``dim``."""

    old: nn.Parameter
    new: nn.Parameter
    dim: int
    index: torch.Tensor


def _cut_tensor_(module: nn.Module, name: str, index: torch.Tensor, dim: int) -> Cut | None:
    tensor = getattr(module, name, None)
    if tensor is None:
        return None
    index = index.to(tensor.device)
    cut = tensor.detach().index_select(dim, index).contiguous()
    if isinstance(tensor, nn.Parameter):
        new = nn.Parameter(cut, requires_grad=tensor.requires_grad)
        setattr(module, name, new)
        return Cut(tensor, new, dim, index.cpu())
    setattr(module, name, cut)  # a buffer (a pruning mask)
    return None


def cut_linear_(linear: nn.Linear, index: torch.Tensor, dim: int) -> list[Cut]:
    """Keep rows (``dim=0``) or columns (``dim=1``) ``index`` of ``linear`` in place; a
    ``torch.nn.utils.prune`` mask is cut alike."""
    weight = "weight_orig" if hasattr(linear, "weight_orig") else "weight"
    names = [weight, "weight_mask"] + (["bias"] if dim == 0 else [])
    cuts = [_cut_tensor_(linear, name, index, dim) for name in names]
    if hasattr(linear, "weight_orig"):  # the pre-hook recomputes it at forward; keep shapes consistent now
        linear.weight = (linear.weight_orig * linear.weight_mask).detach()
    if dim == 0:
        linear.out_features = len(index)
    else:
        linear.in_features = len(index)
    return [c for c in cuts if c is not None]


def _cut_projections(layer: nn.Module, projections: Sequence[Projection], units: torch.Tensor, width: int,
                     total: int) -> list[Cut]:
    cuts = []
    for projection in present(projections, layer):
        linear = projection.linear(layer)
        cuts += cut_linear_(linear, projection.indices(units, width, total), projection.dim)
    return cuts


def keep_heads(encoder: Encoder, index: int, heads: Sequence[int]) -> list[Cut]:
    """Keep only attention ``heads`` of layer ``index`` (indices into its current heads)."""
    family, layer = encoder.family, encoder.layers()[index]
    total, size = family.num_heads(layer), family.head_size(layer)
    kept = torch.tensor(sorted(set(int(h) for h in heads)), dtype=torch.long)
    projections = (*family.head_inputs, family.head_output)
    cuts = _cut_projections(layer, projections, kept, size, total)
    family.set_num_heads(layer, len(kept))
    return cuts


def keep_neurons(encoder: Encoder, index: int, neurons: Sequence[int]) -> list[Cut]:
    """Keep only FFN intermediate ``neurons`` of layer ``index``."""
    family, layer = encoder.family, encoder.layers()[index]
    kept = torch.tensor(sorted(set(int(n) for n in neurons)), dtype=torch.long)
    return _cut_projections(layer, (*family.ffn_inputs, family.ffn_output), kept, 1, family.ffn_width(layer))


def keep_layers(encoder: Encoder, layers: Sequence[int]) -> None:
    """Keep only transformer ``layers``, in order (their parameters leave the model)."""
    encoder.family.keep_layers(encoder.module, sorted(set(int(i) for i in layers)))


def heads_per_layer(encoder: Encoder) -> list[int]:
    return [encoder.family.num_heads(layer) for layer in encoder.layers()]


def intermediate_sizes(encoder: Encoder) -> list[int]:
    return [encoder.family.ffn_width(layer) for layer in encoder.layers()]


def record_structure(encoder: Encoder) -> dict:
    """Write the current per-layer shape into the encoder's config (saved with it; a task
    model shares its base model's config)."""
    structure = {"heads_per_layer": heads_per_layer(encoder), "intermediate_sizes": intermediate_sizes(encoder),
                 **encoder.family.structure_extras(encoder.module)}
    encoder.config.num_hidden_layers = len(structure["heads_per_layer"])
    setattr(encoder.config, STRUCTURE_KEY, structure)
    return structure


def apply_structure(encoder: Encoder, structure: dict) -> None:
    """Reshape a freshly built full-size encoder to a recorded structure (weights are then loaded)."""
    layers = encoder.layers()
    if len(layers) != len(structure["heads_per_layer"]):
        raise ValueError(f"structure has {len(structure['heads_per_layer'])} layers, model {len(layers)}")
    for i, (heads, width) in enumerate(zip(structure["heads_per_layer"], structure["intermediate_sizes"])):
        keep_heads(encoder, i, range(heads))
        keep_neurons(encoder, i, range(width))
    encoder.family.apply_extras(encoder.module, structure)
