"""Post-hoc pruning of a fine-tuned model, measured: from ONE dense model, prune at every level
(scores computed once), optionally recover briefly, evaluate dev and the train subsample, and
time the pruned model against the dense one in the same process."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from ticketbert.config import PruneConfig, TrainConfig
from ticketbert.data import Batch, TaskData, collate
from ticketbert.models.compute import count_prunable, measure_latency
from ticketbert.pruning import Calibration, MaskPlan, Scores, apply, bake_masks, make_calibration, plan, score
from ticketbert.tasks.model import TicketBertModel
from ticketbert.pruning.distill import Distiller
from ticketbert.tracking import Tracker, closing
from ticketbert.training.device import select_device, use_bf16
from ticketbert.training.evaluate import evaluate
from ticketbert.training.loop import fit

LATENCY_BATCH = 32


def latency_batch(data: dict[str, TaskData], pad_id: int, size: int = LATENCY_BATCH) -> tuple[str, Batch]:
    """A fixed dev batch of the first task for timing (its padded shape is recorded)."""
    name, task_data = next(iter(data.items()))
    return name, collate(task_data.dev, list(range(min(size, len(task_data.dev)))), pad_id)


def paired_latency(dense: TicketBertModel, pruned: TicketBertModel, task: str, batch: Batch) -> tuple[float, float]:
    """Median ms of a forward pass of ``batch`` through the dense and the pruned model, timed
    interleaved in this process on the models' device (eval mode, no grad)."""
    device = next(pruned.parameters()).device
    batch = batch.to(device)
    modes = dense.training, pruned.training
    dense.eval(), pruned.eval()
    times = measure_latency([lambda: dense(task, batch), lambda: pruned(task, batch)], device)
    dense.train(modes[0]), pruned.train(modes[1])
    return times[0], times[1]


@dataclass
class LevelResult:
    sparsity: float
    metrics: dict[str, float]
    run_id: str | None = None


def compute_metrics(dense: TicketBertModel, pruned: TicketBertModel, task: str, batch: Batch) -> dict[str, float]:
    """Measured latency of ``pruned``, its speedup over ``dense``, and the timed batch's shape."""
    dense_ms, latency = paired_latency(dense, pruned, task, batch)
    return {"latency_ms": latency, "dense_latency_ms": dense_ms, "speedup": dense_ms / latency,
            "latency_batch": float(batch.labels.numel()), "latency_seq_len": float(batch.input_ids.shape[1])}


def prune_and_measure(dense: TicketBertModel, scores: Scores, sparsity: float, data: dict[str, TaskData], *,
                      train: TrainConfig, pad_id: int, scope: str | None = None, recovery_epochs: int = 0,
                      logger=None, first_epoch: int = 1, options: PruneConfig | None = None,
                      calibration: Calibration | None = None) -> dict[str, float]:
    """A pruned copy of ``dense`` at ``sparsity``: repaired (``options.repair``, on
    ``calibration``), recovered (distilled from ``dense`` when ``options.distill_alpha > 0``),
    evaluated and timed. ``options`` also carries heads+ffn's ``budget`` and ``round_to``, and the
    N:M ``pattern``, ``block_size`` and ``damping`` of the one-shot methods. ``prune_seconds``: the
    time ``apply`` took (for wanda and sparsegpt, the whole layer-wise calibration loop of this
    level); ``achieved_sparsity`` after recovery is measured on the recovered weights."""
    options = options or PruneConfig()
    device = select_device(train.device)
    dense.to(device)
    model = copy.deepcopy(dense)
    began = time.perf_counter()
    prune_plan = plan(scores, sparsity, scope, budget=options.budget, round_to=options.round_to,
                      pattern=options.pattern, block_size=options.block_size, damping=options.damping)
    search_seconds = time.perf_counter() - began
    if options.repair is not None and calibration is None:
        calibration = make_calibration(data, options.calibration_examples, pad_id=pad_id, seed=train.seed)
    began = time.perf_counter()
    report = apply(model, prune_plan, repair=options.repair, data=calibration)
    flops: dict[str, float] = {"search_seconds": search_seconds, "prune_seconds": time.perf_counter() - began}
    pruned = report.metrics()
    if recovery_epochs:
        distiller = Distiller(dense, options.distill_alpha, options.distill_temperature) if options.distill_alpha else None
        result = fit(model, data, train, pad_id=pad_id, epochs=recovery_epochs, logger=logger,
                     first_epoch=first_epoch, batch_loss=distiller)
        flops["recovery_train_flops"] = result.train_flops
        if distiller is not None:
            flops["recovery_teacher_flops"] = distiller.teacher_flops
        if isinstance(prune_plan, MaskPlan):  # the sparsity the recovered weights have (masks keep it)
            pruned["achieved_sparsity"] = 1.0 - count_prunable(model, nonzero=True) / report.prunable_before
    bake_masks(model)  # time the weights as they are, not the mask hook
    metrics = evaluate(model, data, pad_id=pad_id, batch_size=train.eval_batch_size, device=device,
                       bf16=use_bf16(device, train.bf16))
    task, batch = latency_batch(data, pad_id)
    return {**metrics, **flops, **pruned, **compute_metrics(dense, model, task, batch)}


def sweep_sparsity(model: TicketBertModel, data: dict[str, TaskData], levels: list[float], *, method: str,
                   train: TrainConfig, pad_id: int, criterion: str | None = None, scope: str | None = None,
                   recovery_epochs: int = 0, calibration_examples: int = 256, tracker: Tracker | None = None,
                   parent_run_id: str | None = None, run_key: str = "sweep",
                   tags: dict[str, Any] | None = None, options: PruneConfig | None = None) -> list[LevelResult]:
    """Prune ``model`` (fine-tuned, left untouched) at every level of ``levels``.

    Importance is scored once (sequential methods, wanda and sparsegpt, run their layer-wise
    calibration loop per level instead: ``prune_seconds``); each level gets its own MLflow child
    run (tags ``method``, ``criterion``, ``sparsity``, ``pattern``) with dev/train metrics, ``achieved_sparsity``, ``params``,
    ``flops_per_token``, ``flops_reduction``, ``latency_ms`` and ``speedup`` over the dense model.
    ``options``: repair, heads+ffn's budget and round_to, distillation (a ``PruneConfig``).
    """
    options = options or PruneConfig()
    device = select_device(train.device)
    model = model.to(device)
    calibration = make_calibration(data, calibration_examples, pad_id=pad_id, seed=train.seed)
    began = time.perf_counter()
    scores = score(model, method, criterion, calibration)
    scoring_seconds = time.perf_counter() - began
    results = []
    variant = "".join(f"/{k}={v}" for k, v in (("repair", options.repair), ("budget", options.budget),
                                               ("round_to", options.round_to), ("distill", options.distill_alpha or None),
                                               ("pattern", options.pattern)) if v is not None)
    for level in levels:
        logger = None
        if tracker is not None:
            logger = tracker.start(f"{run_key}/{method}/{scores.criterion}{variant}/{level}",
                                   run_name=f"{method}-{level:g}", parent_run_id=parent_run_id,
                                   tags={**(tags or {}), "mode": "posthoc", "method": method,
                                         "criterion": scores.criterion, "sparsity": level,
                                         "repair": options.repair or "none", "pattern": options.pattern or "none"})
        with closing(logger):
            metrics = prune_and_measure(model, scores, level, data, train=train, pad_id=pad_id, scope=scope,
                                        recovery_epochs=recovery_epochs, logger=logger, options=options,
                                        calibration=calibration)
            metrics["scoring_seconds"] = scoring_seconds
            if logger is not None:
                logger.log_dict(metrics, step=recovery_epochs)
        results.append(LevelResult(level, metrics, logger.run_id if logger else None))
    return results
