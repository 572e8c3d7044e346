"""One learning-rate schedule at another height: e.g. the early-bird search phase's own rate.

``set_lr_scale(optimizer, scheduler, s)`` makes the schedule run at ``s`` times every parameter
group's initial rate from now on, its shape (warm-up, decay) and step count unchanged;
``s = 1`` restores it. Setting the scale is idempotent (it rescales ``base_lrs`` from the
groups' ``initial_lr``), so calling it again after resuming from a checkpoint changes nothing.
"""

from __future__ import annotations

from typing import Any

import torch

from ticketbert.pruning.optim import unwrap


def unwrap_scheduler(scheduler: Any) -> torch.optim.lr_scheduler.LRScheduler:
    """The torch scheduler inside a wrapper (accelerate's AcceleratedScheduler, ...)."""
    while not isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler) and hasattr(scheduler, "scheduler"):
        scheduler = scheduler.scheduler
    if not isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
        raise TypeError(f"expected a torch learning-rate scheduler, got {type(scheduler).__name__}")
    return scheduler


def set_lr_scale(optimizer: Any, scheduler: Any, scale: float) -> None:
    """Run ``scheduler`` at ``scale`` x each group's initial learning rate, from the next step on."""
    if scale <= 0:
        raise ValueError(f"learning-rate scale must be > 0, got {scale}")
    optimizer, scheduler = unwrap(optimizer), unwrap_scheduler(scheduler)
    if not hasattr(scheduler, "base_lrs") or any("initial_lr" not in group for group in optimizer.param_groups):
        raise ValueError(f"a search learning rate scales a schedule of base rates (LambdaLR, linear, cosine, ...); "
                         f"{type(scheduler).__name__} has none")
    for index, group in enumerate(optimizer.param_groups):
        target = group["initial_lr"] * scale
        if scheduler.base_lrs[index] > 0:  # a group at rate 0 stays there
            group["lr"] *= target / scheduler.base_lrs[index]
            scheduler.base_lrs[index] = target
