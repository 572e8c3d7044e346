"""Training modes as compositions of phases (train, prune, rewind, resume) over the one loop.

- dense: fine-tune.
- posthoc: fine-tune densely (or reuse a dense model in ``prune.dense_dir``), prune once to
  ``prune.sparsity`` (scores cached beside the dense model), optionally recover, measure.
- early_bird: one run; the mask is drawn as the model trains (gradient criteria from the training
  steps' own backward by default), and once it stops changing the model is pruned in place and
  training goes on (optimizer state cut, not restarted).
- imp: iterative magnitude pruning with rewinding to the pre-trained weights (Chen et al. 2020);
  wanda's IMP rounds rank |W| x the input norms of each round's training forwards.
"""

from __future__ import annotations

import copy
import time
import fcntl
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ticketbert.config import RunConfig
from ticketbert.data import TaskData
from ticketbert.measure import prune_and_measure
from ticketbert.tasks.model import TicketBertModel
from ticketbert.models.compute import count_prunable, flops_per_token
from ticketbert.pruning import (Scores, attach_masks, load_pruned, make_calibration, needs_data, plan, save_pruned,
                                score)
from ticketbert.pruning.api import resolve_criterion
from ticketbert.pruning.early_bird import EarlyBirdPruner
from ticketbert.pruning.training_norms import TrainingNorms
from ticketbert.pruning.methods import describe, get_method, is_dense
from ticketbert.training.callbacks import EarlyBirdHook
from ticketbert.training.device import use_bf16
from ticketbert.training.evaluate import evaluate
from ticketbert.training.loop import Logger, fit


@dataclass
class ModeResult:
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    model_dir: Path | None = None


@contextmanager
def _locked(directory: Path):
    """An exclusive lock on ``directory`` (concurrent trials of one group wait for each other)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_dense(config: RunConfig, model: TicketBertModel, data: dict[str, TaskData], pad_id: int,
              logger: Logger, directory: Path) -> ModeResult:
    """Fine-tune densely (checkpoint per epoch, resumable) and save the model to ``directory/model``.
    The dense point of every sparsity comparison: sparsity 0, speedup 1, its FLOPs per token."""
    trained = fit(model, data, config.train, pad_id=pad_id, logger=logger, checkpoint_dir=directory / "checkpoint")
    point = {"achieved_sparsity": 0.0, "speedup": 1.0, "flops_per_token": flops_per_token(model)}
    logger.log_dict(point, step=len(trained.history))
    return ModeResult({**trained.final, **point}, trained.history, save_pruned(model, directory / "model"))


def dense_model(config: RunConfig, model: TicketBertModel, data: dict[str, TaskData], pad_id: int,
                logger: Logger, directory: Path) -> tuple[TicketBertModel, list[dict[str, float]]]:
    """The fine-tuned dense model of ``directory``: trained once, then reused by every caller."""
    with _locked(directory):
        if (directory / "model").is_dir():
            return load_pruned(directory / "model"), []
        result = run_dense(config, model, data, pad_id, logger, directory)
        return model, result.history


def _flatten(values: list[torch.Tensor] | dict[str, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Unit scores per layer (or per kind and layer) as named tensors: "3" or "ffn.3"."""
    if isinstance(values, dict):
        return {f"{kind}.{i}": v.contiguous() for kind, per_layer in values.items() for i, v in enumerate(per_layer)}
    return {str(i): v.contiguous() for i, v in enumerate(values)}


def _unflatten(tensors: dict[str, torch.Tensor]) -> list[torch.Tensor] | dict[str, list[torch.Tensor]]:
    if all("." not in key for key in tensors):
        return [tensors[str(i)] for i in range(len(tensors))]
    kinds: dict[str, dict[int, torch.Tensor]] = {}
    for key, value in tensors.items():
        kind, index = key.rsplit(".", 1)
        kinds.setdefault(kind, {})[int(index)] = value
    return {kind: [per_layer[i] for i in range(len(per_layer))] for kind, per_layer in kinds.items()}


def cached_scores(directory: Path, model: TicketBertModel, config: RunConfig, data: dict[str, TaskData],
                  pad_id: int) -> Scores:
    """Importance scores of the dense model in ``directory``: structured ones are computed once
    per (method, criterion) and cached there for every sparsity level and trial."""
    method, criterion = config.prune.method, config.prune.criterion
    if not needs_data(method, criterion):
        return score(model, method, criterion)
    if not describe(method).reuses_scores:  # sequential: nothing to cache, each level runs on the batches
        return score(model, method, criterion, make_calibration(data, config.prune.calibration_examples,
                                                                pad_id=pad_id, seed=config.train.seed))
    path = directory / "scores" / f"{method}-{criterion or 'default'}.safetensors"
    with _locked(path.parent):
        if path.is_file():
            values = load_file(str(path))
            name = bytes(values.pop("criterion").tolist()).decode()
            return get_method(method).scores_from(model, name, _unflatten(values))
        calibration = make_calibration(data, config.prune.calibration_examples, pad_id=pad_id, seed=config.train.seed)
        scores = score(model, method, criterion, calibration)
        tensors = _flatten(scores.values)
        tensors["criterion"] = torch.tensor(list(scores.criterion.encode()), dtype=torch.uint8)
        save_file(tensors, str(path))
        return scores


def run_posthoc(config: RunConfig, model: TicketBertModel, data: dict[str, TaskData], pad_id: int,
                logger: Logger, directory: Path) -> ModeResult:
    """Prune the (shared) dense model once to ``prune.sparsity``, recover, evaluate, time."""
    dense_dir = config.prune.dense_dir or directory / "dense"
    dense, history = dense_model(config, model, data, pad_id, logger, dense_dir)
    scores = cached_scores(dense_dir, dense, config, data, pad_id)
    step = len(history) + config.prune.recovery_epochs
    metrics = prune_and_measure(dense, scores, config.prune.sparsity, data, train=config.train, pad_id=pad_id,
                                scope=config.prune.resolved_scope, recovery_epochs=config.prune.recovery_epochs,
                                logger=logger, first_epoch=len(history) + 1, options=config.prune)
    metrics["scoring_flops"] = scores.flops  # 0 when the scores came from the cache
    logger.log_dict(metrics, step=step)
    return ModeResult(metrics, [*history, metrics])


def run_early_bird(config: RunConfig, model: TicketBertModel, data: dict[str, TaskData], pad_id: int,
                   logger: Logger, directory: Path) -> ModeResult:
    """One training run: the early-bird mask is drawn as the model trains; once it settles the
    model is pruned in place, the optimizer's state cut alike, and training goes on to the
    configured epochs (no restart, no new warm-up)."""
    p = config.prune
    calibration = make_calibration(data, p.calibration_examples, pad_id=pad_id, seed=config.train.seed)
    pruner = EarlyBirdPruner(p.method, p.sparsity, criterion=p.criterion, scope=p.resolved_scope,
                             interval=p.early_bird_interval,
                             window=p.early_bird_window, epsilon=p.early_bird_epsilon, max_steps=p.early_bird_max_steps,
                             draws=p.early_bird_draws, data=calibration, model=model, pattern=p.pattern)
    search_scale = None if p.early_bird_search_lr is None else p.early_bird_search_lr / config.train.lr
    hook = EarlyBirdHook(pruner, logger, search_lr_scale=search_scale)
    run = hook.run
    with pruner:  # training draws' gates come off the model however training ends
        trained = fit(model, data, config.train, pad_id=pad_id, logger=logger, checkpoint_dir=directory / "train",
                      callbacks=[hook])
        final = trained.final
        if run.report is None:  # training ended before the ticket settled: prune with the last mask, evaluate that
            run.end_search(trained.train_flops)
            run.prune_now(model)
            device = next(model.parameters()).device
            final = evaluate(model, data, pad_id=pad_id, batch_size=config.train.eval_batch_size, device=device,
                             bf16=use_bf16(device, config.train.bf16))
    total = trained.train_flops + pruner.scoring_flops
    metrics = {**final, **run.found_metrics(), "total_train_flops": total}
    if run.pruned_clock is not None:  # this process saw the ticket: the rest of training is timed
        metrics["final_seconds"] = time.perf_counter() - run.pruned_clock
    logger.log_dict(metrics, step=len(trained.history))
    return ModeResult(metrics, trained.history, save_pruned(model, directory / "model"))


def imp_round_scores(config: RunConfig, candidate: TicketBertModel, norms: TrainingNorms | None,
                     data: dict[str, TaskData], pad_id: int) -> Scores:
    """The scores an IMP round's mask is planned from: the trained weights' magnitudes, or for
    wanda |W| x the input norms of the round's training forwards (one pass over calibration
    batches when none ran here, e.g. a round resumed already trained)."""
    p = config.prune
    if norms is None:
        return score(candidate, p.method)
    method, criterion = get_method(p.method), resolve_criterion(p.method, p.criterion)
    if norms.examples:
        return method.scores_from(candidate, criterion, norms.take())
    calibration = make_calibration(data, p.calibration_examples, pad_id=pad_id, seed=config.train.seed)
    return method.draw_scores(candidate, criterion, calibration)


def run_imp(config: RunConfig, model: TicketBertModel, data: dict[str, TaskData], pad_id: int,
            logger: Logger, directory: Path) -> ModeResult:
    """Lottery-ticket IMP: train, prune (magnitude, or wanda from the round's training forwards),
    rewind the survivors to the pre-trained weights; the sparsity grows geometrically over
    ``prune.imp_rounds`` rounds."""
    p = config.prune
    pretrained = copy.deepcopy(model)
    masks, history, flops = None, [], 0.0
    rounds = p.imp_rounds
    from_forwards = resolve_criterion(p.method, p.criterion) == "activation"
    for round_number in range(rounds + 1):
        candidate = copy.deepcopy(pretrained)
        if masks is not None:
            attach_masks(candidate, masks)
        norms = TrainingNorms(candidate) if from_forwards and round_number < rounds else None
        with norms or nullcontext():
            trained = fit(candidate, data, config.train, pad_id=pad_id, logger=logger,
                          checkpoint_dir=directory / f"round{round_number}", first_epoch=len(history) + 1)
        history += trained.history
        flops += trained.train_flops
        if round_number == rounds:
            break
        target = 1.0 - (1.0 - p.sparsity) ** ((round_number + 1) / rounds)
        masks = plan(imp_round_scores(config, candidate, norms, data, pad_id), target, p.resolved_scope).masks
    achieved = 1.0 - sum(int(m.sum()) for m in masks.values()) / count_prunable(candidate, nonzero=False)
    metrics = {**trained.final, "achieved_sparsity": achieved, "total_train_flops": flops}
    logger.log_dict(metrics, step=len(history))
    return ModeResult(metrics, history, save_pruned(candidate, directory / "model"))


def run_mode(config: RunConfig, model: TicketBertModel, data: dict[str, TaskData], pad_id: int,
             logger: Logger, directory: Path) -> ModeResult:
    """Dispatch on ``config.prune``: dense, post-hoc, early-bird or IMP."""
    if is_dense(config.prune.method):
        return run_dense(config, model, data, pad_id, logger, directory)
    return {"posthoc": run_posthoc, "early_bird": run_early_bird, "imp": run_imp}[config.prune.mode](
        config, model, data, pad_id, logger, directory)
