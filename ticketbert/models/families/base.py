"""What an encoder family is: where its layers, attention and FFN matrices are, and how a
layer's head count changes. Everything else (unit counts, gates, surgery, FLOPs) is generic
over these answers, so a new family is one small file (see ``bert.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Projection:
    """A weight matrix of a layer whose rows (``dim=0``: the unit's outputs) or columns
    (``dim=1``: its inputs) belong to units. ``blocks > 1``: the matrix stacks that many equal
    blocks along ``dim`` (fused Q/K/V, a gated FFN's input and gate), each split among the
    units the same way. ``optional``: built only under some configs (DeBERTa's positional
    projections), so a layer may lack it."""

    path: str  # module path inside the layer, e.g. "attention.self.query"
    dim: int
    blocks: int = 1
    optional: bool = False

    def linear(self, layer: nn.Module) -> nn.Linear:
        return layer.get_submodule(self.path)

    def present(self, layer: nn.Module) -> bool:
        """Whether ``layer`` has this matrix (always, unless ``optional``)."""
        if not self.optional:
            return True
        try:
            self.linear(layer)
        except AttributeError:
            return False
        return True

    def indices(self, units: torch.Tensor, width: int, total: int) -> torch.Tensor:
        """Row/column indices of ``units`` (each ``width`` wide, ``total`` units per block)."""
        within = (units[:, None] * width + torch.arange(width)[None, :]).reshape(-1)
        return torch.cat([within + block * total * width for block in range(self.blocks)])


def present(projections: Iterable[Projection], layer: nn.Module) -> tuple[Projection, ...]:
    """The ``projections`` that ``layer`` has."""
    return tuple(p for p in projections if p.present(layer))


class EmptyAttention(nn.Module):
    """An attention module with no heads left, computing what it computed with every head
    masked: a zero-width context, passed through the ``outputs`` modules (in order; an output
    projection inside the replaced module, so its bias remains the attention's output).
    ``attributes`` (a zero head count, the head size) stay readable as the family reads them."""

    def __init__(self, outputs: dict[str, nn.Module] | None = None, **attributes):
        super().__init__()
        for name, module in (outputs or {}).items():
            self.add_module(name, module)
        for name, value in attributes.items():
            setattr(self, name, value)

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, None]:
        context = hidden_states.new_zeros(*hidden_states.shape[:-1], 0)
        for module in self.children():
            context = module(context)
        return context, None


class EncoderFamily:
    """One encoder layout. Subclasses set the class attributes and the three head methods."""

    name: str
    model_types: tuple[str, ...]  # ``config.model_type`` values that use this layout
    layers_path: str  # the ModuleList of layers inside the base model
    head_inputs: tuple[Projection, ...]  # rows per head: Q, K, V (and positional projections)
    head_output: Projection  # columns per head: the attention output projection
    ffn_inputs: tuple[Projection, ...]  # rows per neuron
    ffn_output: Projection  # columns per neuron

    # -- layers
    def layers(self, base: nn.Module) -> nn.ModuleList:
        return base.get_submodule(self.layers_path)

    def keep_layers(self, base: nn.Module, kept: list[int]) -> None:
        """Keep only layers ``kept`` (in order) and say so in the config."""
        parent_path, _, name = self.layers_path.rpartition(".")
        parent = base.get_submodule(parent_path) if parent_path else base
        layers = self.layers(base)
        setattr(parent, name, nn.ModuleList([layers[i] for i in kept]))
        base.config.num_hidden_layers = len(kept)

    # -- attention heads
    def num_heads(self, layer: nn.Module) -> int:
        raise NotImplementedError

    def head_size(self, layer: nn.Module) -> int:
        raise NotImplementedError

    def set_num_heads(self, layer: nn.Module, count: int) -> None:
        """Update the layer's attributes after its projections were cut to ``count`` heads;
        ``count == 0`` makes the attention a pass-through (``EmptyAttention``)."""
        raise NotImplementedError

    def attention_span(self, layer: nn.Module, seq_len: int) -> float:
        """Keys each query's attention costs, on average (local-attention and relative-position
        families override): attention FLOPs per token are ``4 * span * heads * head_size``."""
        return seq_len

    # -- FFN
    def ffn_width(self, layer: nn.Module) -> int:
        return self.ffn_output.linear(layer).in_features

    # -- saved structure
    def structure_extras(self, base: nn.Module) -> dict:
        """Family-specific shape facts to record beside heads and widths (default none)."""
        return {}

    def apply_extras(self, base: nn.Module, structure: dict) -> None:
        """Rebuild what ``structure_extras`` recorded on a freshly built model (default nothing)."""
