"""N:M semi-structured sparsity and the keep-mask selections every one-shot solver shares.

``pattern="N:M"``: at most N non-zero weights in every M consecutive input weights of a row
(2:4 is 50%). A selection turns a score matrix (higher = more important) into a keep-mask:
per output row, per matrix, or N:M per row group.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ticketbert.pruning.masks import _keep_mask

SCOPES = ("row", "layer", "global")


@dataclass(frozen=True)
class NMPattern:
    """Keep ``n`` of every ``m`` consecutive input weights of a row."""

    n: int
    m: int

    @property
    def sparsity(self) -> float:
        return 1.0 - self.n / self.m

    def __str__(self) -> str:
        return f"{self.n}:{self.m}"


def parse_pattern(pattern: str | NMPattern | None) -> NMPattern | None:
    """``"N:M"`` (0 < N < M) as an NMPattern; None stays None (unstructured)."""
    if pattern is None or isinstance(pattern, NMPattern):
        return pattern
    parts = str(pattern).split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"pattern must be 'N:M' with integers N < M (e.g. '2:4'), got {pattern!r}")
    n, m = int(parts[0]), int(parts[1])
    if not 0 < n < m:
        raise ValueError(f"pattern {pattern!r}: N must satisfy 0 < N < M (N >= M prunes nothing)")
    return NMPattern(n, m)


def resolve_sparsity(sparsity: float | None, pattern: NMPattern | None) -> float:
    """The sparsity to prune to: ``sparsity``, or the pattern's ``1 - N/M`` (which an explicit
    ``sparsity`` must then equal)."""
    if pattern is None:
        if sparsity is None:
            raise ValueError("sparsity is required without a pattern")
    elif sparsity is None:
        sparsity = pattern.sparsity
    elif abs(sparsity - pattern.sparsity) > 1e-9:
        raise ValueError(f"sparsity {sparsity} contradicts pattern {pattern} (which prunes {pattern.sparsity:g}); "
                         f"leave sparsity out or set it to {pattern.sparsity:g}")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    return sparsity


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
