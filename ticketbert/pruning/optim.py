"""Keeping an optimizer working across structured removal: it moves onto the smaller parameters
with its per-parameter state (Adam's moments, SGD's momentum) cut exactly as they were, and
parameters that left the model (removed layers, emptied attention) leave it, so the next step
continues as if the removed units had never existed."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ticketbert.models.structure import Cut


def unwrap(optimizer) -> torch.optim.Optimizer:
    """The torch optimizer inside a wrapper (accelerate's AcceleratedOptimizer, ...)."""
    while not isinstance(optimizer, torch.optim.Optimizer) and hasattr(optimizer, "optimizer"):
        optimizer = optimizer.optimizer
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"expected a torch.optim.Optimizer, got {type(optimizer).__name__}")
    return optimizer


@torch.no_grad()
def slice_optimizer(optimizer, cuts: Sequence[Cut], model: nn.Module) -> None:
    """Move ``optimizer`` onto the parameters that ``cuts`` made, its per-parameter state cut
    alike, and drop every parameter that is no longer in ``model``. Step counts and
    hyper-parameters are kept."""
    optimizer = unwrap(optimizer)
    replaced = {id(cut.old): cut for cut in cuts}
    for group in optimizer.param_groups:
        for position, param in enumerate(group["params"]):
            cut = replaced.get(id(param))
            if cut is None:
                continue
            group["params"][position] = cut.new
            state = optimizer.state.pop(param, None)
            if state:
                optimizer.state[cut.new] = {
                    key: value.index_select(cut.dim, cut.index.to(value.device)).contiguous()
                    if isinstance(value, torch.Tensor) and value.shape == param.shape else value
                    for key, value in state.items()}
    alive = {id(p) for p in model.parameters()}
    for group in optimizer.param_groups:
        for param in [p for p in group["params"] if id(p) not in alive]:
            optimizer.state.pop(param, None)
        group["params"] = [p for p in group["params"] if id(p) in alive]
