"""The layer-wise calibration loop, and the one-pass path for modules without a known encoder.

Encoder (sequential): one forward pass per calibration batch captures the first encoder
layer's input and the other arguments every layer is called with (attention masks, position
embeddings); then, layer by layer: the layer runs on the captured inputs with its Linear
inputs hooked (statistics over real tokens), each matrix is solved and masked, and the layer
runs again so that the next one sees the pruned model's activations. Memory: the captured
hidden states of all batches (one copy, replaced layer by layer, plus one batch's output) and
one layer's statistics.

One pass (any ``nn.Module``; also ``scope="global"``, which compares all matrices at once):
every target Linear hooked during one forward pass per batch of the unpruned model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ticketbert.models.compute import effective_weight
from ticketbert.models.families import Encoder
from ticketbert.pruning.calibration import ForwardFn, is_batch_object, batch_attention_mask, to_device
from ticketbert.pruning.masks import attach_masks, plan_masks
from ticketbert.pruning.oneshot.solvers import Solver, SolverOptions
from ticketbert.pruning.oneshot.stats import InputStats


def default_forward(model: nn.Module, batch: Any) -> Any:
    """``model(**batch)`` for dict batches; ``model(task, batch)`` for ticketbert's ``(task, Batch)``."""
    if isinstance(batch, Mapping):
        return model(**batch)
    if isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[0], str) and is_batch_object(batch[1]):
        return model(*batch)
    raise TypeError(f"the default forward_fn calls model(**batch) and needs dict batches, got {type(batch).__name__}: "
                    f"pass forward_fn=lambda model, batch: ...")


@dataclass
class LoopStats:
    """What a calibration pass cost: tokens seen, bytes of captured activations and the peak
    bytes of one step's input statistics."""

    tokens: int = 0
    activation_bytes: int = 0
    stats_bytes: int = 0
    sequential: bool = False


class _Stop(Exception):
    """Ends a capture pass once the last layer's arguments are recorded."""


@dataclass
class CapturedBatch:
    """One batch's hidden state entering the current layer, and each layer's other arguments."""

    hidden: torch.Tensor
    mask: torch.Tensor | None
    arguments: list[tuple[tuple, dict]] = field(default_factory=list)
    second: torch.Tensor | None = None  # first batch only: what the model fed the second layer


def _tensor_bytes(values: Any, seen: set[int]) -> int:
    if isinstance(values, torch.Tensor):
        if values.data_ptr() in seen:
            return 0
        seen.add(values.data_ptr())
        return values.numel() * values.element_size()
    if isinstance(values, Mapping):
        values = list(values.values())
    if isinstance(values, (tuple, list)):
        return sum(_tensor_bytes(v, seen) for v in values)
    return 0


def capture_inputs(encoder: Encoder, model: nn.Module, batches: list, forward_fn: ForwardFn) -> list[CapturedBatch]:
    """The first layer's hidden state and every layer's other arguments, per batch."""
    layers = encoder.layers()
    captured: list[CapturedBatch] = []

    def hook(index: int):
        def record(_, args, kwargs):
            if args:
                hidden, rest = args[0], tuple(args[1:])
            else:
                kwargs = dict(kwargs)
                hidden, rest = kwargs.pop("hidden_states"), ()
            if index == 0:
                captured[-1].hidden = hidden.detach()
            if index == 1 and len(captured) == 1:
                captured[0].second = hidden.detach()
            captured[-1].arguments.append((rest, dict(kwargs)))
            if index == len(layers) - 1:
                raise _Stop
        return record

    handles = [layer.register_forward_pre_hook(hook(i), with_kwargs=True) for i, layer in enumerate(layers)]
    try:
        for batch in batches:
            captured.append(CapturedBatch(torch.empty(0), batch_attention_mask(batch)))
            try:
                forward_fn(model, batch)
            except _Stop:
                pass
    finally:
        for handle in handles:
            handle.remove()
    return captured


def captured_bytes(captured: list[CapturedBatch]) -> int:
    """Bytes the captured hidden states and layer arguments hold (shared tensors counted once)."""
    seen: set[int] = set()
    return sum(_tensor_bytes([c.hidden, c.arguments], seen) for c in captured)


def _run_layer(layer: nn.Module, item: CapturedBatch, index: int) -> torch.Tensor:
    rest, kwargs = item.arguments[index]
    out = layer(item.hidden, *rest, **kwargs)
    return out[0] if isinstance(out, tuple) else out


def check_replay(encoder: Encoder, captured: list[CapturedBatch]) -> None:
    """Re-running the first layer on its captured inputs gives what the model fed the second
    (the loop replays layers one by one; an encoder that transforms hidden states between
    layers, like DeBERTa's convolution after the first, cannot be replayed)."""
    first = captured[0]
    if first.second is None:
        return
    out = _run_layer(encoder.layers()[0], first, 0)
    if out.shape != first.second.shape or not torch.allclose(out, first.second, rtol=1e-4, atol=1e-5):
        raise ValueError(f"{type(encoder.module).__name__} changes hidden states between its layers, which the "
                         f"layer-wise loop cannot replay: use scope='global' (one pass of the unpruned model)")
    first.second = None


def _hook_inputs(linears: dict[str, nn.Module], stats: dict[str, InputStats], mask: list) -> list:
    """Pre-hooks adding each Linear's input to its statistics (``mask[0]``: the batch's mask)."""
    def hook(name: str):
        return lambda _, args: stats[name].add(args[0], mask[0])
    return [linear.register_forward_pre_hook(hook(name)) for name, linear in linears.items()]


def _empty_stats(linears: dict[str, nn.Module], solver: Solver) -> dict[str, InputStats]:
    return {name: InputStats.empty(effective_weight(m).shape[1], solver.needs_gram, effective_weight(m).device)
            for name, m in linears.items()}


def _set_weight(linear: nn.Module, weight: torch.Tensor) -> None:
    target = linear.weight_orig if hasattr(linear, "weight_orig") else linear.weight
    target.data.copy_(weight.to(target.dtype))


def _solve(model: nn.Module, linears: dict[str, nn.Module], stats: dict[str, InputStats] | None, solver: Solver,
           options: SolverOptions) -> dict[str, torch.Tensor]:
    """Solve and mask ``linears`` one by one (keep-masks keyed ``<name>.weight``)."""
    masks = {}
    for name, linear in linears.items():
        solution = solver.solve(effective_weight(linear).detach(), stats[name] if stats else None, options)
        if solution.weight is not None:
            _set_weight(linear, solution.weight)
        masks[f"{name}.weight"] = solution.keep
    attach_masks(model, masks)
    return masks


@torch.no_grad()
def prune_sequential(model: nn.Module, encoder: Encoder, targets: dict[str, nn.Module], batches: list,
                     forward_fn: ForwardFn, solver: Solver, options: SolverOptions) -> tuple[dict, LoopStats]:
    """The layer-wise loop over ``encoder``'s layers (``targets``: the matrices to prune, keyed
    inside the encoder)."""
    loop = LoopStats(sequential=True)
    captured = capture_inputs(encoder, model, batches, forward_fn)
    check_replay(encoder, captured)
    loop.activation_bytes = captured_bytes(captured)
    loop.tokens = sum(int(c.mask.sum()) if c.mask is not None else c.hidden.shape[:-1].numel() for c in captured)
    masks: dict[str, torch.Tensor] = {}
    prefix = encoder.family.layers_path
    for index, layer in enumerate(encoder.layers()):
        linears = {name: m for name, m in targets.items() if name.startswith(f"{prefix}.{index}.")}
        if linears:
            stats = _empty_stats(linears, solver)
            current: list = [None]
            handles = _hook_inputs(linears, stats, current)
            try:
                for item in captured:
                    current[0] = item.mask
                    _run_layer(layer, item, index)
            finally:
                for handle in handles:
                    handle.remove()
            loop.stats_bytes = max(loop.stats_bytes, sum(s.nbytes for s in stats.values()))
            masks.update(_solve(model, linears, stats, solver, options))
            del stats
        for item in captured:
            item.hidden = _run_layer(layer, item, index)
    return masks, loop


@torch.no_grad()
def collect_stats(model: nn.Module, targets: dict[str, nn.Module], batches: list, forward_fn: ForwardFn,
                  solver: Solver) -> tuple[dict[str, InputStats], LoopStats]:
    """Input statistics of every target Linear from one forward pass per batch."""
    stats = _empty_stats(targets, solver)
    current: list = [None]
    handles = _hook_inputs(targets, stats, current)
    try:
        for batch in batches:
            current[0] = batch_attention_mask(batch)
            forward_fn(model, batch)
    finally:
        for handle in handles:
            handle.remove()
    tokens = next(iter(stats.values())).tokens if stats else 0
    return stats, LoopStats(tokens=tokens, stats_bytes=sum(s.nbytes for s in stats.values()))


@torch.no_grad()
def prune_one_pass(model: nn.Module, targets: dict[str, nn.Module], batches: list | None, forward_fn: ForwardFn,
                   solver: Solver, options: SolverOptions) -> tuple[dict, LoopStats]:
    """Every target from the unpruned model's inputs (no data for magnitude); ``global`` plans
    one threshold over all matrices' scores."""
    stats, loop = (collect_stats(model, targets, batches, forward_fn, solver) if solver.needs_data
                   else (None, LoopStats()))
    if options.scope != "global" or options.pattern is not None:
        return _solve(model, targets, stats, solver, options), loop
    scores = {f"{name}.weight": solver.scores(effective_weight(m).detach(), stats[name] if stats else None)
              for name, m in targets.items()}
    masks = plan_masks(scores, options.sparsity, "global")
    attach_masks(model, masks)
    return masks, loop


def on_device(batches: list, model: nn.Module) -> list:
    """``batches`` moved to ``model``'s device."""
    device = next(model.parameters()).device
    return [to_device(b, device) for b in batches]
