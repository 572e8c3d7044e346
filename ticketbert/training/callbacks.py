"""Adapters from library objects to the loop's ``Callback`` hooks."""

from __future__ import annotations

import time
from typing import Any

import torch

from ticketbert.pruning.api import PruningReport
from ticketbert.pruning.early_bird import EarlyBirdPruner
from ticketbert.training.loop import Callback, Logger, TrainResult
from ticketbert.training.lr_scale import set_lr_scale


class EarlyBirdHook(Callback):
    """Steps an ``EarlyBirdPruner`` after every optimizer step; when the ticket is found, prunes
    the model in place and cuts the optimizer's state alike, so the same run goes on training
    the smaller model (no new optimizer, no new warm-up). Every mask distance is logged as
    ``early_bird/mask_distance`` at its optimizer step; the ticket's figures once, when found.

    ``search_lr_scale``: while the ticket is not found the learning-rate schedule runs at that
    multiple of its height (same warm-up and decay shape, same steps); from the step after
    pruning on, at its own height again. Training draws' gates go on the model at the start."""

    def __init__(self, pruner: EarlyBirdPruner, logger: Logger | None = None, *,
                 search_lr_scale: float | None = None):
        if search_lr_scale is not None and search_lr_scale <= 0:
            raise ValueError(f"search_lr_scale must be > 0, got {search_lr_scale}")
        self.pruner, self.logger, self.search_lr_scale = pruner, logger, search_lr_scale
        self._scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.report: PruningReport | None = None
        self.pruned_at: int | None = None
        self.search_seconds = 0.0
        self.prune_seconds = 0.0
        self.search_train_flops = 0.0
        self._began: float | None = None
        self.pruned_clock: float | None = None  # perf_counter when pruning ended, in this process

    def on_train_begin(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
        if self.pruned_at is None:
            self.pruner.attach(model)
        if self.search_lr_scale is not None:
            self._scheduler = scheduler
            set_lr_scale(optimizer, scheduler, 1.0 if self.pruned_at is not None else self.search_lr_scale)

    def on_step_end(self, model: torch.nn.Module, step: int, optimizer: torch.optim.Optimizer,
                    totals: TrainResult) -> bool:
        if self.pruned_at is not None:
            return False
        self._began = self._began or time.perf_counter()
        logged = len(self.pruner.distances)
        found = self.pruner.step(model)
        if self.logger is not None:
            for distance, at in zip(self.pruner.distances[logged:], self.pruner.distance_steps[logged:]):
                self.logger.log_dict({"early_bird/mask_distance": distance}, step=at)
        if not found:
            return False
        self.end_search(totals)
        started = time.perf_counter()
        self.report = self.pruner.prune(model, optimizer=optimizer)
        if self._scheduler is not None:
            set_lr_scale(optimizer, self._scheduler, 1.0)
        self.pruned_clock = time.perf_counter()
        self.prune_seconds = self.pruned_clock - started
        self.pruned_at = step
        if self.logger is not None:
            self.logger.log_dict(self.found_metrics(), step=step)
        return True

    def end_search(self, totals: TrainResult) -> None:
        """The search ends here (the ticket is found, or training ended without one): its time and FLOPs."""
        if self._began is not None:
            self.search_seconds += time.perf_counter() - self._began
            self._began = None
        self.search_train_flops = totals.train_flops

    def found_metrics(self) -> dict[str, float]:
        """The ticket's figures: where it was found, what the mask draws cost, what it removed."""
        metrics = {"early_bird_step": float(self.pruner.found_at or self.pruner.steps),
                   "early_bird_converged": float(self.pruner.converged),
                   "search_train_flops": self.search_train_flops, "search_scoring_flops": self.pruner.scoring_flops,
                   "search_seconds": self.search_seconds, "prune_seconds": self.prune_seconds}
        return {**metrics, **(self.report.metrics() if self.report else {})}

    def on_resume(self, model: torch.nn.Module) -> None:
        if self.pruned_at is not None and self.report is None:
            self.report = self.pruner.prune(model)  # the checkpoint holds the pruned shapes

    def state_dict(self) -> dict[str, Any]:
        return {"pruner": self.pruner.state_dict(), "pruned_at": self.pruned_at, "search_seconds": self.search_seconds,
                "prune_seconds": self.prune_seconds, "search_train_flops": self.search_train_flops}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pruner.load_state_dict(state["pruner"])
        self.pruned_at = state["pruned_at"]
        self.search_seconds, self.prune_seconds = state["search_seconds"], state["prune_seconds"]
        self.search_train_flops = state["search_train_flops"]
