"""Repair without training (``repair="lstsq"``): once the units to remove are chosen, rescale
the kept ones so that every pruned layer's output-projection result matches the dense model's
on calibration data, then fold the scales into the weights, before physical removal (the saved
model is a plain smaller model).

Layer by layer (heads before the FFN of each layer, layers in order), on the calibration
tokens (padding excluded): with ``x`` the input of the unit's output projection ``W`` in the
model pruned and repaired so far, ``r`` the residual that the sublayer's output is added to
(before its LayerNorm), and ``t = W x_dense + r_dense - r`` (Kwon et al. 2022's layer-wise
reconstruction: the sublayer output ``W x + r`` of the pruned model should match the dense
one's, which also compensates what earlier pruning changed in the residual stream; the bias is
unchanged and cancels), the scales ``s`` of the kept units K solve

    min_s  sum_tokens || sum_{u in K} s_u W[:, u] x[u] - t ||^2  +  lambda ||s - 1||^2,

a |K| x |K| linear system from the Gram matrix ``G = blocksum(W^T W o X^T X)`` (one block per
unit: a head's ``head_size`` columns, a neuron's one). ``lambda = damping x mean(diag G)`` pulls
towards 1 (no repair), so a layer with nothing pruned upstream or in it keeps its scales at 1
exactly (it is skipped). A layer whose system is not positive definite, whose solution is not
finite, or whose solution does not lower the calibration error is left unrepaired (one warning
names those layers). The residual is read where the module around the output projection is
called with it as its second argument (BERT layout, DeBERTa); in other families (DistilBERT,
ModernBERT add it in the layer) ``r`` is taken as 0 and only the projection result is matched.
Cost: one dense forward pass plus one pass per pruned layer and kind, stopped at that layer;
no gradient.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from ticketbert.models.compute import effective_weight
from ticketbert.models.families import Encoder
from ticketbert.pruning.calibration import Calibration, batch_attention_mask
from ticketbert.pruning.units import UNIT_KINDS

REPAIRS = ("lstsq",)
KIND_ORDER = ("heads", "ffn")


class _Stop(Exception):
    """Raised by a capture hook once the layer of interest has been seen: ends the pass early."""


@dataclass
class RepairResult:
    """Scales per kept unit (kind -> layer -> scales in the order of the kept units) and the
    calibration error of each repaired layer before / after (sum of squared differences)."""

    scales: dict[str, dict[int, torch.Tensor]] = field(default_factory=dict)
    error_before: dict[tuple[int, str], float] = field(default_factory=dict)
    error_after: dict[tuple[int, str], float] = field(default_factory=dict)
    unrepaired: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _tokens(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The rows of ``x`` that are real tokens, flattened to [tokens, features]."""
    if mask is not None and mask.shape == x.shape[:2]:
        return x[mask.bool()]
    return x.reshape(-1, x.shape[-1])


def _capture(module: nn.Module, sink, stop: bool):
    """A forward pre-hook handing the input of ``module`` to ``sink``; ``stop`` ends the pass."""
    def hook(_, args):
        sink(args[0])
        if stop:
            raise _Stop
    return module.register_forward_pre_hook(hook)


def _capture_residual(block: nn.Module, projection: nn.Module, sink):
    """A pre-hook on ``block`` handing its residual argument (the second tensor, shaped like the
    projection's output) to ``sink``, or None when it has none."""
    def hook(_, args):
        residual = args[1] if len(args) > 1 and isinstance(args[1], torch.Tensor) else None
        fits = residual is not None and residual.shape[:-1] == args[0].shape[:-1] and \
            residual.shape[-1] == projection.weight.shape[0]
        sink(residual if fits else None)
    return block.register_forward_pre_hook(hook)


def _run(model: nn.Module, calibration: Calibration, batch) -> None:
    """One forward pass of ``batch`` (through the user's loss function), stopped early by a hook."""
    try:
        calibration.batch_loss(model, batch)
    except _Stop:
        pass


def _block_sum(matrix: torch.Tensor, units: int, width: int) -> torch.Tensor:
    return matrix.reshape(units, width, units, width).sum((1, 3))


@torch.no_grad()
def repair_lstsq(model: nn.Module, encoder: Encoder, removals: dict[str, dict[int, list[int]]],
                 calibration: Calibration, *, damping: float = 1e-3) -> RepairResult:
    """Rescale the units kept by ``removals`` (kind -> layer -> removed units) in place so each
    pruned layer's output matches the dense model's on ``calibration``; scales folded into the
    output projections' columns. Call before removing the units physically."""
    began = time.perf_counter()
    unknown = set(removals) - set(KIND_ORDER)
    if unknown:
        raise ValueError(f"repair 'lstsq' rescales heads and FFN neurons, not {sorted(unknown)}")
    was_training = model.training
    model.eval()
    kinds = [k for k in KIND_ORDER if k in removals]
    stages = [(layer, kind) for layer in range(len(encoder.layers())) for kind in kinds]
    projections = {(layer, kind): UNIT_KINDS[kind].output_projection(encoder, layer) for layer, kind in stages}
    blocks = {(layer, kind): UNIT_KINDS[kind].output_block(encoder, layer) for layer, kind in stages}
    result = RepairResult()

    # the dense model's sublayer outputs W x + r (bias excluded) on every calibration token
    targets: dict[tuple[int, str], list[torch.Tensor]] = {stage: [] for stage in stages}
    for batch in calibration.batches:
        mask = batch_attention_mask(batch)
        residuals: dict[tuple[int, str], torch.Tensor | None] = {}

        def target(x, stage):
            value = _tokens(x, mask).float() @ effective_weight(projections[stage]).float().T
            if residuals.get(stage) is not None:
                value = value + _tokens(residuals[stage], mask).float()
            targets[stage].append(value.cpu())

        handles = [_capture_residual(blocks[stage], projections[stage], lambda r, s=stage: residuals.__setitem__(s, r))
                   for stage in stages]
        handles += [_capture(projections[stage], lambda x, s=stage: target(x, s), stage == stages[-1])
                    for stage in stages]
        try:
            _run(model, calibration, batch)
        finally:
            for handle in handles:
                handle.remove()

    try:
        with contextlib.ExitStack() as stack:
            gates = {kind: stack.enter_context(UNIT_KINDS[kind].gates(encoder)) for kind in kinds}
            for kind in kinds:
                for layer, units in removals[kind].items():
                    gates[kind][layer][units] = 0.0
            changed = False
            for stage in stages:
                layer, kind = stage
                removed = set(removals[kind].get(layer, []))
                changed = changed or bool(removed)
                if not changed:
                    continue
                total = gates[kind][layer].numel()
                kept = torch.tensor([u for u in range(total) if u not in removed], dtype=torch.long)
                if not len(kept):
                    continue
                scales, before, after = _solve_stage(model, calibration, projections[stage], blocks[stage],
                                                     targets.pop(stage), UNIT_KINDS[kind].width(encoder, layer), total,
                                                     kept, damping)
                if scales is None:
                    result.unrepaired.append(f"layer {layer} {kind}")
                    continue
                gates[kind][layer][kept] = scales.to(gates[kind][layer].dtype)
                result.scales.setdefault(kind, {})[layer] = scales.float()
                result.error_before[stage], result.error_after[stage] = before, after
    finally:
        model.train(was_training)

    for kind, per_layer in result.scales.items():  # fold: scaling a unit's input columns of W
        for layer, scales in per_layer.items():
            removed = set(removals[kind].get(layer, []))
            total = UNIT_KINDS[kind].counts(encoder)[layer]
            kept = [u for u in range(total) if u not in removed]
            width = UNIT_KINDS[kind].width(encoder, layer)
            linear = UNIT_KINDS[kind].output_projection(encoder, layer)
            weight = linear.weight_orig if hasattr(linear, "weight_orig") else linear.weight
            columns = torch.ones(total * width, dtype=weight.dtype, device=weight.device)
            columns.view(total, width)[kept] = scales.to(weight.dtype).to(weight.device)[:, None]
            weight.mul_(columns[None, :])
    if result.unrepaired:
        warnings.warn(f"repair 'lstsq': left unrepaired (ill-conditioned least squares, or no error reduction on "
                      f"the calibration data): {', '.join(result.unrepaired)}", stacklevel=2)
    result.seconds = time.perf_counter() - began
    return result


def _solve_stage(model: nn.Module, calibration: Calibration, projection: nn.Module, block: nn.Module,
                 targets: list[torch.Tensor], width: int, total: int, kept: torch.Tensor,
                 damping: float) -> tuple[torch.Tensor | None, float, float]:
    """Scales of the ``kept`` units of one layer (None when the solve is not trusted), with the
    calibration error before and after."""
    features = total * width
    weight = effective_weight(projection).detach().float()
    inputs_gram = torch.zeros(features, features, dtype=torch.float64)
    cross = torch.zeros(features, dtype=torch.float64)
    target_norm = 0.0
    for batch, target in zip(calibration.batches, targets):
        mask = batch_attention_mask(batch)
        seen: list[torch.Tensor] = []
        residual: list[torch.Tensor | None] = []
        handles = [_capture_residual(block, projection, residual.append),
                   _capture(projection, lambda x: seen.append(_tokens(x, mask).float()), True)]
        try:
            _run(model, calibration, batch)
        finally:
            for handle in handles:
                handle.remove()
        x = seen[0].cpu()
        if residual[0] is not None:  # what W x must make up for: the dense output minus this residual
            target = target - _tokens(residual[0], mask).float().cpu()
        inputs_gram += (x.T @ x).double()
        cross += (x * (target @ weight.cpu())).sum(0).double()
        target_norm += float(target.double().pow(2).sum())
    weight = weight.cpu().double()
    gram = _block_sum((weight.T @ weight) * inputs_gram, total, width)
    rhs = cross.view(total, width).sum(1)
    a, b = gram[kept][:, kept], rhs[kept]
    ones = torch.ones(len(kept), dtype=torch.float64)

    def error(s: torch.Tensor) -> float:
        return float(s @ a @ s - 2 * s @ b + target_norm)

    before = error(ones)
    lam = damping * float(a.diagonal().mean()) if len(kept) else 0.0
    system = a + lam * torch.eye(len(kept), dtype=torch.float64)
    factor, info = torch.linalg.cholesky_ex(system)
    if int(info) != 0:
        return None, before, before
    scales = torch.cholesky_solve((b + lam * ones)[:, None], factor)[:, 0]
    after = error(scales) if bool(torch.isfinite(scales).all()) else float("inf")
    if not after < before:
        return None, before, before
    return scales, before, after
