"""Unstructured masks: L1-magnitude scores, global or per-matrix plans, and their application
through ``torch.nn.utils.prune`` (mask buffer + forward pre-hook; ``bake_masks`` removes it)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import prune

from ticketbert.models.compute import effective_weight, prunable_linears


def weighted_modules(encoder: nn.Module, include: Sequence[str] = ()) -> dict[str, nn.Module]:
    """The six prunable matrices of every layer, plus the modules named in ``include`` (e.g.
    ``embeddings.word_embeddings``: embeddings, pooler or LayerNorm weights made prunable)."""
    modules: dict[str, nn.Module] = dict(prunable_linears(encoder))
    for name in include:
        try:
            module = encoder.get_submodule(name)
        except AttributeError:
            raise ValueError(f"include: the encoder has no module {name!r}") from None
        if not isinstance(getattr(module, "weight", None), torch.Tensor):
            raise ValueError(f"include: module {name!r} has no weight to prune")
        modules[name] = module
    return modules


@torch.no_grad()
def magnitude_scores(encoder: nn.Module, include: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """|w| of every prunable weight (already-masked weights score 0), keyed ``<module>.weight``."""
    return {f"{name}.weight": effective_weight(module).detach().abs().clone()
            for name, module in weighted_modules(encoder, include).items()}


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
    """``{param name: bool keep-mask}`` of every masked weight of ``encoder``."""
    return {f"{name}.weight": module.weight_mask.bool()
            for name, module in encoder.named_modules() if hasattr(module, "weight_mask")}


def attach_masks(encoder: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Enforce ``masks`` on ``encoder``'s weights; a weight already masked gets the
    intersection. Optimizer steps cannot revive a pruned weight: forward uses weight * mask."""
    for name, mask in masks.items():
        try:
            module = encoder.get_submodule(name.removesuffix(".weight"))
        except AttributeError:
            raise KeyError(f"mask {name!r} matches no weight of the encoder") from None
        prune.custom_from_mask(module, "weight", mask.to(device=module.weight.device, dtype=module.weight.dtype))


def bake_masks(encoder: nn.Module) -> None:
    """Make masks permanent: the weight becomes ``weight * mask`` and the hook goes away."""
    for module in encoder.modules():
        if hasattr(module, "weight_mask"):
            prune.remove(module, "weight")
