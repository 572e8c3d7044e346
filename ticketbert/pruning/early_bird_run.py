"""Training with an early-bird pruner, whatever the loop: the one core under both adapters
(ticketbert's loop hook ``training.callbacks.EarlyBirdHook`` and the Hugging Face Trainer's
``integrations.transformers.EarlyBirdCallback``), so both check the same things, log the same
metric names and save and restore the same state.

Metric names: ``early_bird/mask_distance`` at every draw; once the ticket is found
``early_bird_step``, ``early_bird_converged``, ``search_train_flops``, ``search_scoring_flops``,
``search_seconds``, ``prune_seconds`` and the ``PruningReport``'s metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ticketbert.pruning.api import PruningReport
from ticketbert.pruning.early_bird import EarlyBirdPruner
from ticketbert.pruning.lr_scale import set_lr_scale

DISTANCE_METRIC = "early_bird/mask_distance"


@dataclass
class StepOutcome:
    """What one optimizer step did: the mask distances drawn (step -> distance), and whether
    the model was pruned at it."""

    distances: dict[int, float] = field(default_factory=dict)
    pruned: bool = False


class EarlyBirdRun:
    """Steps an ``EarlyBirdPruner`` through training; when the ticket is found, prunes the model
    in place, cuts the optimizer's state alike and puts the learning rate back.

    ``search_lr_scale``: while the ticket is searched the schedule runs at that multiple of its
    height (same shape, same steps); from the step after pruning on, at its own height.
    """

    def __init__(self, pruner: EarlyBirdPruner, *, search_lr_scale: float | None = None):
        if not isinstance(pruner, EarlyBirdPruner):
            raise TypeError(f"early-bird training needs a ticketbert.EarlyBirdPruner, got {type(pruner).__name__}")
        if search_lr_scale is not None and search_lr_scale <= 0:
            raise ValueError(f"search_lr_scale must be > 0, got {search_lr_scale}")
        self.pruner, self.search_lr_scale = pruner, search_lr_scale
        self.report: PruningReport | None = None
        self.pruned_at: int | None = None
        self.search_seconds = 0.0
        self.prune_seconds = 0.0
        self.search_train_flops = 0.0
        self.pruned_clock: float | None = None  # perf_counter when pruning ended, in this process
        self._began: float | None = None
        self._scheduler: Any = None

    def begin(self, model: nn.Module, optimizer: Any, scheduler: Any, *, loss_scaling: bool = False) -> None:
        """Before the first step of a (resumed) training: checks, training draws' gates on,
        the search learning rate set. ``loss_scaling``: fp16's dynamic loss scaler is on."""
        if self.pruned_at is None:
            self.pruner.check_model(model)
            if loss_scaling and self.pruner.draws == "training":
                raise ValueError("training draws sum the gate gradients of the training backward, which fp16's loss "
                                 "scaler rescales from step to step: use bf16, or EarlyBirdPruner(draws='calibration')")
            self.pruner.attach(model)
        if self.search_lr_scale is not None:
            self._scheduler = scheduler
            set_lr_scale(optimizer, scheduler, 1.0 if self.pruned_at is not None else self.search_lr_scale)

    def after_step(self, model: nn.Module, optimizer: Any, step: int, train_flops: float) -> StepOutcome:
        """After optimizer step ``step`` (``train_flops``: the run's training FLOPs so far)."""
        if self.pruned_at is not None:
            return StepOutcome()
        self._began = self._began or time.perf_counter()
        drawn = len(self.pruner.distances)
        found = self.pruner.step(model)
        outcome = StepOutcome(dict(zip(self.pruner.distance_steps[drawn:], self.pruner.distances[drawn:])))
        if found:
            self.end_search(train_flops)
            started = time.perf_counter()
            self.report = self.pruner.prune(model, optimizer=optimizer)
            if self._scheduler is not None:
                set_lr_scale(optimizer, self._scheduler, 1.0)
            self.pruned_clock = time.perf_counter()
            self.prune_seconds = self.pruned_clock - started
            self.pruned_at = step
            outcome.pruned = True
        return outcome

    def end_search(self, train_flops: float) -> None:
        """The search ends here (the ticket is found, or training ended without one): its time and FLOPs."""
        if self._began is not None:
            self.search_seconds += time.perf_counter() - self._began
            self._began = None
        self.search_train_flops = train_flops

    def prune_now(self, model: nn.Module, optimizer: Any = None) -> PruningReport:
        """Prune with the last mask though the ticket did not settle (training ended first)."""
        self.report = self.pruner.prune(model, optimizer=optimizer)
        return self.report

    def found_metrics(self) -> dict[str, float]:
        """The ticket's figures: where it was found, what the search cost, what it removed."""
        metrics = {"early_bird_step": float(self.pruner.found_at or self.pruner.steps),
                   "early_bird_converged": float(self.pruner.converged),
                   "search_train_flops": self.search_train_flops, "search_scoring_flops": self.pruner.scoring_flops,
                   "search_seconds": self.search_seconds, "prune_seconds": self.prune_seconds}
        return {**metrics, **(self.report.metrics() if self.report else {})}

    def restore(self, model: nn.Module) -> None:
        """After ``load_state_dict``, before a checkpoint's weights are loaded: a ticket found
        before the checkpoint was written is applied again, so the model has its pruned shapes."""
        if self.pruned_at is not None and self.report is None:
            self.report = self.pruner.prune(model)

    def state_dict(self) -> dict[str, Any]:
        return {"pruner": self.pruner.state_dict(), "pruned_at": self.pruned_at, "search_seconds": self.search_seconds,
                "prune_seconds": self.prune_seconds, "search_train_flops": self.search_train_flops}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pruner.load_state_dict(state["pruner"])
        self.pruned_at = state["pruned_at"]
        self.search_seconds, self.prune_seconds = state["search_seconds"], state["prune_seconds"]
        self.search_train_flops = state["search_train_flops"]

