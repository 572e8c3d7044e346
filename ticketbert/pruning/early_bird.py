"""Early-bird tickets (You et al. 2020; EarlyBERT, Chen et al. 2021): during a short training
phase, draw the pruning mask every few steps; once consecutive masks stop changing (mask
distance below ``epsilon`` over a ``window`` of draws) the ticket is found, and training
resumes on the pruned model.

``EarlyBirdPruner`` needs nothing from a training loop but to be stepped::

    pruner = EarlyBirdPruner("heads", sparsity=0.3, criterion="l1")
    for batch in loader:
        ...; optimizer.step()
        if pruner.step(model):        # True once the ticket is found
            report = pruner.prune(model)
            break
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ticketbert.pruning.api import Plan, PruningReport, apply, plan, score
from ticketbert.training.loop import Callback


def plan_distance(a: Plan, b: Plan) -> float:
    """Normalised Hamming distance of two plans: the fraction of units (or weights) whose
    pruned/kept status differs, relative to the number pruned."""
    if a.masks is not None:
        changed = sum(int((a.masks[k] != b.masks[k]).sum()) for k in a.masks)
        pruned = max(sum(int((~m).sum()) for m in a.masks.values()), 1)
        return changed / (2 * pruned)
    units_a = {(i, u) for i, us in a.removed.items() for u in us}
    units_b = {(i, u) for i, us in b.removed.items() for u in us}
    return len(units_a ^ units_b) / (2 * max(len(units_a), len(units_b), 1))


class EarlyBirdPruner(Callback):
    """Finds an early-bird ticket while a model trains.

    Every ``interval`` steps the mask for ``sparsity`` is drawn under ``criterion``; the ticket
    is found when the last ``window`` distances between consecutive masks are all below
    ``epsilon``, or (``converged`` False) after ``max_steps`` steps.
    """

    def __init__(self, method: str, sparsity: float, *, criterion: str | None = None, scope: str = "global",
                 interval: int = 20, window: int = 3, epsilon: float = 0.1, max_steps: int | None = None,
                 data=None):
        if interval < 1 or window < 1 or not 0 < epsilon <= 1:
            raise ValueError("interval and window must be >= 1 and epsilon in (0, 1]")
        self.method, self.sparsity, self.criterion, self.scope = method, sparsity, criterion, scope
        self.interval, self.window, self.epsilon, self.max_steps = interval, window, epsilon, max_steps
        self.data = data
        self.steps = 0
        self.distances: list[float] = []
        self.plan: Plan | None = None
        self.found_at: int | None = None
        self.converged = False
        self.scoring_flops = 0.0  # model FLOPs the mask draws cost (calibration passes; 0 for l1)

    @property
    def should_stop(self) -> bool:  # the loop's stop signal: the ticket is drawn
        return self.found_at is not None

    def draw(self, model: nn.Module) -> Plan:
        """The mask the model's current weights give."""
        scores = score(model, self.method, self.criterion, self.data)
        self.scoring_flops += scores.flops
        return plan(scores, self.sparsity, self.scope)

    def step(self, model: nn.Module) -> bool:
        """Count one optimizer step; draw and compare masks every ``interval`` steps.
        Returns True once the ticket is found."""
        self.steps += 1
        if self.found_at is not None or self.steps % self.interval:
            return self.found_at is not None
        current = self.draw(model)
        if self.plan is not None:
            self.distances.append(plan_distance(self.plan, current))
        self.plan = current
        recent = self.distances[-self.window:]
        if len(recent) == self.window and max(recent) < self.epsilon:
            self.found_at, self.converged = self.steps, True
        elif self.max_steps is not None and self.steps >= self.max_steps:
            self.found_at = self.steps
        return self.found_at is not None

    def prune(self, model: nn.Module) -> PruningReport:
        """Apply the ticket (drawn now if none was drawn yet) to ``model``."""
        if self.plan is None:
            self.plan = self.draw(model)
        return apply(model, self.plan)

    # -- Callback interface
    def on_step_end(self, model: nn.Module, step: int) -> None:
        self.step(model)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"steps": self.steps, "distances": list(self.distances),
                                 "found_at": self.found_at, "converged": self.converged,
                                 "scoring_flops": self.scoring_flops}
        if self.plan is not None:
            state["masks"] = self.plan.masks
            state["removed"] = {str(k): list(v) for k, v in self.plan.removed.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.distances = state["steps"], list(state["distances"])
        self.found_at, self.converged = state["found_at"], state["converged"]
        self.scoring_flops = state["scoring_flops"]
        if "removed" in state:
            removed = {int(k): list(v) for k, v in state["removed"].items()}
            masks = state.get("masks")
            self.plan = Plan(self.method, self.criterion or "", self.sparsity,
                             masks={k: torch.as_tensor(v) for k, v in masks.items()} if masks else None,
                             removed=removed)
