"""Structured units (attention heads, FFN neurons, whole layers) as objects looked up by name:
each counts its units and their weights, scores them by L1 norm, gates them in place (for
gradient criteria and masked equivalence) and removes them physically. All of it asks the
encoder's family adapter where the matrices are, so every registered family works alike."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

from ticketbert.models.compute import effective_weight, encoder_linears
from ticketbert.models.families import Encoder, Projection, present
from ticketbert.models.structure import Cut, keep_heads, keep_layers, keep_neurons, record_structure


def _per_unit(projection: Projection, layer: nn.Module, width: int, total: int,
              reduce: str = "count") -> torch.Tensor:
    """Per unit of a projection: its weight count, or (``reduce="l1"``) its weights' L1 norm."""
    linear = projection.linear(layer)
    weight = effective_weight(linear).detach()
    if reduce == "count":
        per_slice = torch.full((weight.shape[projection.dim],), float(weight.shape[1 - projection.dim]))
    else:
        per_slice = weight.abs().sum(1 - projection.dim).float().cpu()
    return per_slice.view(projection.blocks, total, width).sum((0, 2))

# a layer's input -> its gate ([units] or [rows, units]), or None to leave the layer as it is
GateFn = Callable[[torch.Tensor], torch.Tensor | None]


class UnitKind:
    """A kind of structured unit; subclasses say where units sit in a layer."""

    name: str

    def counts(self, encoder: Encoder) -> list[int]:
        """Units of this kind in each layer."""
        raise NotImplementedError

    def weight_counts(self, encoder: Encoder) -> list[torch.Tensor]:
        """Prunable weights each unit holds, per layer."""
        raise NotImplementedError

    def l1(self, encoder: Encoder) -> list[torch.Tensor]:
        """L1 norm of each unit's weights, per layer (the structured twin of magnitude)."""
        raise NotImplementedError

    def gate_hook(self, encoder: Encoder, index: int, gate_for: GateFn):
        """Register a hook on layer ``index`` scaling each unit's output by ``gate_for(input)``
        (shape [units]: shared by every row; [rows, units]: one gate per encoder input row; None:
        no scaling); its handle. Gates are cast to the activations' dtype (bf16 stays bf16)."""
        raise NotImplementedError

    def output_projection(self, encoder: Encoder, index: int) -> nn.Module:
        """The matrix whose input columns hold layer ``index``'s units (where gates act)."""
        raise NotImplementedError

    def width(self, encoder: Encoder, index: int) -> int:
        """Input columns of ``output_projection`` per unit."""
        raise NotImplementedError

    def remove(self, encoder: Encoder, removed: dict[int, list[int]]) -> list[Cut]:
        """Physically remove ``removed[layer] = [unit indices]``; the cut parameters."""
        raise NotImplementedError

    @contextlib.contextmanager
    def gates(self, encoder: Encoder, requires_grad: bool = False) -> Iterator[list[torch.Tensor]]:
        """Gates (a tensor of ones per layer, one entry per unit) scaling every unit's output
        while the context is open. Gate 0 is the unit's removal (exactly for heads and neurons; for
        layers up to float rounding, ~1e-7); the gradient with respect to a gate is Michel et al.'s
        importance signal."""
        device = next(encoder.module.parameters()).device
        gates = [torch.ones(n, device=device, requires_grad=requires_grad) for n in self.counts(encoder)]
        handles = [self.gate_hook(encoder, i, lambda x, gate=gate: gate) for i, gate in enumerate(gates) if gate.numel()]
        try:
            yield gates
        finally:
            for handle in handles:
                handle.remove()

    @contextlib.contextmanager
    def example_gates(self, encoder: Encoder) -> Iterator[list[list[torch.Tensor]]]:
        """Per-row gates for per-example gradients: at every forward pass each layer creates a
        gate of ones with one row per encoder input row (shape [rows, units], requiring grad)
        and appends it to ``captured[layer]``; one backward then gives every row's gradient.
        Forward passes without autograd (``torch.no_grad``, evaluation) are left ungated and
        capture nothing. Clear the lists between batches."""
        captured: list[list[torch.Tensor]] = [[] for _ in self.counts(encoder)]

        def per_row(store: list[torch.Tensor], units: int) -> GateFn:
            def gate_for(x: torch.Tensor) -> torch.Tensor | None:
                if not torch.is_grad_enabled():
                    return None
                if x.ndim < 2:
                    raise ValueError(f"per-example gates need inputs with a row dimension, got shape {tuple(x.shape)}")
                store.append(torch.ones(x.shape[0], units, device=x.device, requires_grad=True))
                return store[-1]
            return gate_for

        handles = [self.gate_hook(encoder, i, per_row(captured[i], n)) for i, n in enumerate(self.counts(encoder)) if n]
        try:
            yield captured
        finally:
            for handle in handles:
                handle.remove()


class _WidthUnits(UnitKind):
    """Units that are slices of a layer's matrices: heads (``width`` = head size) or neurons."""

    def _projections(self, encoder: Encoder) -> tuple[tuple[Projection, ...], Projection]:
        raise NotImplementedError

    def _width(self, encoder: Encoder, layer: nn.Module) -> int:
        raise NotImplementedError

    def _sum(self, encoder: Encoder, reduce: str) -> list[torch.Tensor]:
        inputs, output = self._projections(encoder)
        result = []
        for layer, total in zip(encoder.layers(), self.counts(encoder)):
            if total == 0:
                result.append(torch.zeros(0))
                continue
            width = self._width(encoder, layer)
            result.append(sum(_per_unit(p, layer, width, total, reduce) for p in present((*inputs, output), layer)))
        return result

    def weight_counts(self, encoder: Encoder) -> list[torch.Tensor]:
        return self._sum(encoder, "count")

    @torch.no_grad()
    def l1(self, encoder: Encoder) -> list[torch.Tensor]:
        return self._sum(encoder, "l1")

    def output_projection(self, encoder: Encoder, index: int) -> nn.Module:
        return self._projections(encoder)[1].linear(encoder.layers()[index])

    def output_block(self, encoder: Encoder, index: int) -> nn.Module:
        """The module around ``output_projection`` (BERT layout: ``attention.output`` / ``output``,
        called with the projection input and the residual)."""
        parent, _, _ = self._projections(encoder)[1].path.rpartition(".")
        layer = encoder.layers()[index]
        return layer.get_submodule(parent) if parent else layer

    def width(self, encoder: Encoder, index: int) -> int:
        return self._width(encoder, encoder.layers()[index])

    def gate_hook(self, encoder: Encoder, index: int, gate_for: GateFn):
        width = self.width(encoder, index)

        def scale(module, args):
            x = args[0]
            gate = gate_for(x)
            if gate is None:
                return None
            gate = gate.repeat_interleave(width, dim=-1).to(x.dtype)
            if gate.ndim == 2:  # one gate per row: broadcast over the token positions
                gate = gate.view(gate.shape[0], *([1] * (x.ndim - 2)), gate.shape[1])
            return (x * gate, *args[1:])

        return self.output_projection(encoder, index).register_forward_pre_hook(scale)

    def _keep(self, encoder: Encoder, index: int, kept: list[int]) -> list[Cut]:
        raise NotImplementedError

    def remove(self, encoder: Encoder, removed: dict[int, list[int]]) -> list[Cut]:
        cuts = []
        for i, total in enumerate(self.counts(encoder)):
            if removed.get(i):
                gone = set(removed[i])
                cuts += self._keep(encoder, i, [u for u in range(total) if u not in gone])
        record_structure(encoder)
        return cuts


class Heads(_WidthUnits):
    name = "heads"

    def counts(self, encoder: Encoder) -> list[int]:
        return [encoder.family.num_heads(layer) for layer in encoder.layers()]

    def _projections(self, encoder):
        return encoder.family.head_inputs, encoder.family.head_output

    def _width(self, encoder, layer):
        return encoder.family.head_size(layer)

    def _keep(self, encoder, index, kept):
        return keep_heads(encoder, index, kept)


class Neurons(_WidthUnits):
    name = "ffn"

    def counts(self, encoder: Encoder) -> list[int]:
        return [encoder.family.ffn_width(layer) for layer in encoder.layers()]

    def _projections(self, encoder):
        return encoder.family.ffn_inputs, encoder.family.ffn_output

    def _width(self, encoder, layer):
        return 1

    def _keep(self, encoder, index, kept):
        return keep_neurons(encoder, index, kept)


def _layer_linears(encoder: Encoder) -> list[list[nn.Module]]:
    linears = encoder_linears(encoder)
    prefix = encoder.family.layers_path
    return [[m for name, m in linears.items() if name.startswith(f"{prefix}.{i}.")] for i in range(len(encoder.layers()))]


class Layers(UnitKind):
    name = "layers"

    def counts(self, encoder: Encoder) -> list[int]:
        return [1] * len(encoder.layers())

    def weight_counts(self, encoder: Encoder) -> list[torch.Tensor]:
        return [torch.tensor([float(sum(effective_weight(m).numel() for m in ms))]) for ms in _layer_linears(encoder)]

    @torch.no_grad()
    def l1(self, encoder: Encoder) -> list[torch.Tensor]:
        return [torch.tensor([float(sum(effective_weight(m).abs().sum() for m in ms))]) for ms in _layer_linears(encoder)]

    def gate_hook(self, encoder: Encoder, index: int, gate_for: GateFn):
        def scale_layer(module, args, kwargs, output):
            hidden = args[0] if args else kwargs["hidden_states"]
            out = output[0] if isinstance(output, tuple) else output
            gate = gate_for(hidden)
            if gate is None:
                return None
            gate = gate.to(out.dtype)
            if gate.ndim == 2:
                gate = gate.view(gate.shape[0], *([1] * (out.ndim - 1)))
            mixed = out + (gate - 1) * (out - hidden)  # exactly the layer's output at gate 1; its input at 0
            return (mixed, *output[1:]) if isinstance(output, tuple) else mixed

        return encoder.layers()[index].register_forward_hook(scale_layer, with_kwargs=True)

    def remove(self, encoder: Encoder, removed: dict[int, list[int]]) -> list[Cut]:
        keep_layers(encoder, [i for i in range(len(encoder.layers())) if i not in removed])
        record_structure(encoder)
        return []


UNIT_KINDS: dict[str, UnitKind] = {kind.name: kind for kind in (Heads(), Neurons(), Layers())}


def get_unit_kind(name: str) -> UnitKind:
    if name not in UNIT_KINDS:
        raise ValueError(f"unknown structured unit {name!r}; known: {sorted(UNIT_KINDS)}")
    return UNIT_KINDS[name]

