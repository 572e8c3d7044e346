"""Adapters from library objects to the loop's ``Callback`` hooks."""

from __future__ import annotations

from typing import Any

import torch

from ticketbert.pruning.early_bird import EarlyBirdPruner
from ticketbert.pruning.early_bird_run import DISTANCE_METRIC, EarlyBirdRun
from ticketbert.training.loop import Callback, Logger, TrainResult


class EarlyBirdHook(Callback):
    """Runs an ``EarlyBirdRun`` (``ticketbert.pruning.early_bird_run``) in ticketbert's loop:
    the same run goes on training the pruned model (no new optimizer, no new warm-up). Every
    mask distance is logged as ``early_bird/mask_distance`` at its optimizer step; the ticket's
    figures once, when found. ``search_lr_scale``: see ``EarlyBirdRun``."""

    def __init__(self, pruner: EarlyBirdPruner, logger: Logger | None = None, *,
                 search_lr_scale: float | None = None):
        self.run = EarlyBirdRun(pruner, search_lr_scale=search_lr_scale)
        self.pruner, self.logger = pruner, logger

    def on_train_begin(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                       scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
        self.run.begin(model, optimizer, scheduler)

    def on_step_end(self, model: torch.nn.Module, step: int, optimizer: torch.optim.Optimizer,
                    totals: TrainResult) -> bool:
        outcome = self.run.after_step(model, optimizer, step, totals.train_flops)
        if self.logger is not None:
            for at, distance in outcome.distances.items():
                self.logger.log_dict({DISTANCE_METRIC: distance}, step=at)
            if outcome.pruned:
                self.logger.log_dict(self.run.found_metrics(), step=step)
        return outcome.pruned

    def on_resume(self, model: torch.nn.Module) -> None:
        self.run.restore(model)

    def state_dict(self) -> dict[str, Any]:
        return self.run.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.run.load_state_dict(state)
