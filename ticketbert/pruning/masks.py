"""Unstructured masks: L1-magnitude scores, global or per-matrix plans, and their application
through ``torch.nn.utils.prune`` (mask buffer + forward pre-hook; ``bake_masks`` removes it)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import prune

from ticketbert.models.compute import effective_weight, prunable_linears
from ticketbert.models.families import find_encoder


def pruning_root(model: nn.Module) -> nn.Module:
    """The module masks are keyed in: the encoder inside ``model`` if it holds one, else ``model``."""
    encoder = find_encoder(model, strict=False)
    return encoder.module if encoder is not None else model


def _matching(root: nn.Module, patterns: Sequence[str], what: str) -> dict[str, nn.Module]:
    found: dict[str, nn.Module] = {}
    for pattern in patterns:
        hits = {name: m for name, m in root.named_modules() if name and fnmatch.fnmatchcase(name, pattern)}
        if not hits:
            raise ValueError(f"{what}: no module of {type(root).__name__} matches {pattern!r}")
        found.update(hits)
    return found


def weighted_modules(model: nn.Module, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> dict[str, nn.Module]:
    """The modules whose weights magnitude pruning ranks, keyed inside ``pruning_root(model)``:
    the model kind's prunable matrices (``prunable_linears``), plus modules matching the
    ``include`` patterns (fnmatch, e.g. ``embeddings.word_embeddings`` or ``classifier*``),
    minus those matching ``exclude``."""
    root = pruning_root(model)
    modules: dict[str, nn.Module] = dict(prunable_linears(model))
    for name, module in _matching(root, include, "include").items():
        if not isinstance(getattr(module, "weight", None), torch.Tensor):
            raise ValueError(f"include: module {name!r} has no weight to prune")
        modules[name] = module
    for name in _matching(root, exclude, "exclude"):
        modules.pop(name, None)
    if not modules:
        raise ValueError(f"{type(model).__name__}: no weights left to prune (nn.Linear modules, include=, exclude=)")
    return modules


@torch.no_grad()
def magnitude_scores(model: nn.Module, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> dict[str, torch.Tensor]:
    """|w| of every prunable weight (already-masked weights score 0), keyed ``<module>.weight``."""
    return {f"{name}.weight": effective_weight(module).detach().abs().clone()
            for name, module in weighted_modules(model, include, exclude).items()}


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


def attached_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{param name: bool keep-mask}`` of every masked weight, keyed inside ``pruning_root(model)``."""
    return {f"{name}.weight": module.weight_mask.bool()
            for name, module in pruning_root(model).named_modules() if hasattr(module, "weight_mask")}


def attach_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Enforce ``masks`` (keyed inside ``pruning_root(model)``) on the weights; a weight already
    masked gets the intersection. Optimizer steps cannot revive a pruned weight: forward uses
    weight * mask (``torch.nn.utils.prune``; the parameter stays the one the optimizer holds)."""
    root = pruning_root(model)
    for name, mask in masks.items():
        try:
            module = root.get_submodule(name.removesuffix(".weight"))
        except AttributeError:
            raise KeyError(f"mask {name!r} matches no weight of {type(root).__name__}") from None
        prune.custom_from_mask(module, "weight", mask.to(device=module.weight.device, dtype=module.weight.dtype))


def bake_masks(model: nn.Module) -> None:
    """Make masks permanent: the weight becomes ``weight * mask`` and the hook goes away."""
    for module in model.modules():
        if hasattr(module, "weight_mask"):
            prune.remove(module, "weight")
