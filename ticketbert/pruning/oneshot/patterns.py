"""The keep-mask selections every one-shot solver shares: a score matrix (higher = more
important) becomes a keep-mask per output row, per matrix, or N:M per row group
(``ticketbert.pruning.nm_pattern``)."""

from __future__ import annotations

import torch

from ticketbert.pruning.masks import _keep_mask
from ticketbert.pruning.nm_pattern import NMPattern

SCOPES = ("row", "layer", "global")


def check_widths(widths: dict[str, int], pattern: NMPattern | None) -> None:
    """Every matrix's input width (``name -> in_features``) is a multiple of the pattern's M."""
    if pattern is None:
        return
    for name, width in widths.items():
        if width % pattern.m:
            raise ValueError(f"pattern {pattern}: matrix {name!r} has {width} input features, not a multiple of "
                             f"{pattern.m}")


def smallest(scores: torch.Tensor, count: int, dim: int | None = None) -> torch.Tensor:
    """Keep-mask: False at the ``count`` smallest scores (of the whole tensor, or along ``dim``)."""
    if dim is None:
        return _keep_mask(scores, count)
    keep = torch.ones_like(scores, dtype=torch.bool)
    if count > 0:
        keep.scatter_(dim, torch.topk(scores, count, dim=dim, largest=False).indices, False)
    return keep


def nm_keep(scores: torch.Tensor, pattern: NMPattern) -> torch.Tensor:
    """Keep-mask of the ``n`` largest scores in every ``m`` consecutive columns of each row."""
    rows, cols = scores.shape
    groups = scores.reshape(rows, cols // pattern.m, pattern.m)
    return smallest(groups, pattern.m - pattern.n, dim=2).reshape(rows, cols)


def select(scores: torch.Tensor, sparsity: float, scope: str, pattern: NMPattern | None = None) -> torch.Tensor:
    """Keep-mask of one matrix's ``scores``: N:M under a pattern, else ``round(sparsity x
    width)`` pruned per output row (``row``) or ``round(sparsity x size)`` over the matrix (``layer``)."""
    if pattern is not None:
        return nm_keep(scores, pattern)
    if scope == "row":
        return smallest(scores, round(sparsity * scores.shape[1]), dim=1)
    if scope == "layer":
        return smallest(scores, round(sparsity * scores.numel()))
    raise ValueError(f"scope must be one of {', '.join(SCOPES[:2])} for a single matrix, got {scope!r}")
