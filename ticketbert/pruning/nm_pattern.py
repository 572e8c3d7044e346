"""N:M semi-structured sparsity, torch-free (run configs read it): ``pattern="N:M"`` keeps at
most N non-zero weights in every M consecutive input weights of a row (2:4 is 50%)."""

from __future__ import annotations

from dataclasses import dataclass


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


def pattern_text(value: object) -> object:
    """A config's pattern as written: YAML 1.1 reads an unquoted ``2:4`` as the base-60 number
    124, which is read back as ``"2:4"``; anything else is left for ``parse_pattern`` to judge."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 60:
        return f"{value // 60}:{value % 60}"
    return value
