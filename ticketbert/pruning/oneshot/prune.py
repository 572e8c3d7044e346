"""``oneshot_prune(model, method, sparsity, data)``: activation-aware one-shot pruning, no
retraining, no labels. Options are checked before any calibration pass."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ticketbert.models.compute import effective_weight, prunable_linears
from ticketbert.models.families import find_encoder
from ticketbert.pruning.calibration import ForwardFn, as_calibration
from ticketbert.pruning.oneshot.loop import LoopStats, default_forward, on_device, prune_one_pass, prune_sequential
from ticketbert.pruning.nm_pattern import parse_pattern, resolve_sparsity
from ticketbert.pruning.oneshot.patterns import check_widths
from ticketbert.pruning.oneshot.solvers import SolverOptions, get_solver


@dataclass
class OneShotResult:
    """Keep-masks (keyed like ``attached_masks``), the sparsity they reach, and what it cost."""

    method: str
    options: SolverOptions
    masks: dict[str, torch.Tensor]
    achieved_sparsity: float
    seconds: float
    loop: LoopStats


def resolve_options(method: str, sparsity: float | None, *, pattern: str | None = None, scope: str | None = None,
                    block_size: int = 128, damping: float = 0.01) -> SolverOptions:
    """The checked options of ``method`` (scope defaults to the method's own)."""
    solver = get_solver(method)
    nm = parse_pattern(pattern)
    sparsity = resolve_sparsity(sparsity, nm)
    scope = scope or solver.default_scope
    if scope not in solver.scopes:
        raise ValueError(f"method {method!r}: scope must be one of {', '.join(solver.scopes)}, got {scope!r}")
    if block_size < 1 or (nm is not None and block_size % nm.m):
        raise ValueError(f"block_size must be a positive multiple of the pattern's M, got {block_size}")
    if not damping > 0:
        raise ValueError(f"damping must be > 0 (a fraction of the Hessian's mean diagonal), got {damping}")
    return SolverOptions(sparsity, scope, nm, block_size, damping)


def oneshot_prune(model: nn.Module, method: str, sparsity: float | None = None, data: Any = None, *,
                  forward_fn: ForwardFn | None = None, pattern: str | None = None, scope: str | None = None,
                  block_size: int = 128, damping: float = 0.01, examples: int = 256, pad_id: int = 0,
                  max_batches: int | None = None) -> OneShotResult:
    """Prune ``model``'s prunable matrices in place with ``method`` (``magnitude``, ``wanda``,
    ``sparsegpt``) and attach the masks; SparseGPT's updated weights are written first.

    ``data``: calibration batches (a list, a DataLoader: the first ``max_batches``), a
    Calibration, or ticketbert's ``{task: TaskData}`` (``examples`` per task), run through
    ``forward_fn(model, batch)`` (default ``model(**batch)``; inputs only, no labels); padding is
    read from the batches' ``attention_mask``. ``pattern``: ``"N:M"``, with ``sparsity`` left out
    or equal to ``1 - N/M``. ``scope``: ``row``, ``layer`` or ``global`` (defaults: magnitude
    global, wanda row, sparsegpt layer). ``block_size`` / ``damping``: SparseGPT's column block
    and Hessian damping (fraction of its mean diagonal). A model holding a supported encoder is
    calibrated layer by layer (``ticketbert.pruning.oneshot.loop``); any other module, and
    ``scope="global"``, in one pass of the unpruned model."""
    options = resolve_options(method, sparsity, pattern=pattern, scope=scope, block_size=block_size, damping=damping)
    calibration = None
    if get_solver(method).needs_data:
        check_targets(model, options)
        if data is None:
            raise ValueError(f"method {method!r} reads calibration inputs: pass data= (batches)")
        calibration = as_calibration(data, examples=examples, pad_id=pad_id, max_batches=max_batches)
    return run_oneshot(model, method, options, calibration.batches if calibration else None,
                       forward_fn or (calibration.forward_fn if calibration else None))


def check_targets(model: nn.Module, options: SolverOptions) -> None:
    """Every prunable matrix of ``model`` fits the pattern (input width a multiple of M)."""
    check_widths({name: effective_weight(m).shape[1] for name, m in prunable_linears(model).items()},
                 options.pattern)


def run_oneshot(model: nn.Module, method: str, options: SolverOptions, batches: list | None,
                forward_fn: ForwardFn | None = None) -> OneShotResult:
    """``oneshot_prune`` with checked ``options`` and calibration ``batches`` (None for magnitude)."""
    solver = get_solver(method)
    targets = prunable_linears(model)
    check_targets(model, options)
    if solver.needs_data and not batches:
        raise ValueError(f"method {method!r} reads calibration inputs: pass data= (batches)")
    batches = on_device(batches, model) if batches else None
    forward_fn = forward_fn or default_forward
    began = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        encoder = find_encoder(model, strict=False)
        compares_all = options.scope == "global" and options.pattern is None  # a pattern compares within groups
        if encoder is not None and solver.needs_data and not compares_all:
            masks, loop = prune_sequential(model, encoder, targets, batches, forward_fn, solver, options)
        else:
            masks, loop = prune_one_pass(model, targets, batches, forward_fn, solver, options)
    finally:
        model.train(was_training)
    kept = sum(int(m.sum()) for m in masks.values())
    achieved = 1.0 - kept / max(sum(m.numel() for m in masks.values()), 1)
    return OneShotResult(method, options, masks, achieved, time.perf_counter() - began, loop)
