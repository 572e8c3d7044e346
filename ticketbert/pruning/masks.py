"""Unstructured masks: L1-magnitude scores, global or per-matrix plans, and their application
through ``torch.nn.utils.prune`` (mask buffer + forward pre-hook; ``bake_masks`` removes it)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune

from ticketbert.models.compute import effective_weight, prunable_linears


@torch.no_grad()
def magnitude_scores(encoder: nn.Module) -> dict[str, torch.Tensor]:
    """|w| of every prunable weight (already-masked weights score 0), keyed ``<module>.weight``."""
    return {f"{name}.weight": effective_weight(linear).detach().abs().clone()
            for name, linear in prunable_linears(encoder).items()}


def _keep_mask(scores: torch.Tensor, amount: int) -> torch.Tensor:
    """True except at the ``amount`` smallest scores (torch.nn.utils.prune's rule, ties included)."""
    mask = torch.ones(scores.numel(), dtype=torch.bool, device=scores.device)
    if amount:
        mask[torch.topk(scores.reshape(-1), k=amount, largest=False).indices] = False
    return mask.view_as(scores)


def plan_masks(scores: dict[str, torch.Tensor], sparsity: float, scope: str = "global") -> dict[str, torch.Tensor]:
    """Keep-masks removing ``sparsity`` of the scored weights: the smallest scores over all
    matrices at once (``global``, one threshold; Chen et al. 2020) or within each (``layer``)."""
    if scope == "layer":
        return {name: _keep_mask(s, round(sparsity * s.numel())) for name, s in scores.items()}
    if scope != "global":
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    keep = _keep_mask(flat, round(sparsity * flat.numel()))
    masks, start = {}, 0
    for name, s in scores.items():
        masks[name] = keep[start: start + s.numel()].view_as(s)
        start += s.numel()
    return masks


def attached_masks(encoder: nn.Module) -> dict[str, torch.Tensor]:
    """``{param name: bool keep-mask}`` of every masked prunable weight of ``encoder``."""
    return {f"{name}.weight": linear.weight_mask.bool()
            for name, linear in prunable_linears(encoder).items() if hasattr(linear, "weight_mask")}


def attach_masks(encoder: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Enforce ``masks`` on ``encoder``'s weights; a weight already masked gets the
    intersection. Optimizer steps cannot revive a pruned weight: forward uses weight * mask."""
    linears = prunable_linears(encoder)
    for name, mask in masks.items():
        module_name = name.removesuffix(".weight")
        if module_name not in linears:
            raise KeyError(f"mask {name!r} matches no prunable weight of the encoder")
        linear = linears[module_name]
        prune.custom_from_mask(linear, "weight", mask.to(device=linear.weight.device, dtype=linear.weight.dtype))


def bake_masks(encoder: nn.Module) -> None:
    """Make masks permanent: the weight becomes ``weight * mask`` and the hook goes away."""
    for linear in prunable_linears(encoder).values():
        if hasattr(linear, "weight_mask"):
            prune.remove(linear, "weight")
