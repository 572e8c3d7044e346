"""The 1-point rule of every results table: how far a method prunes before the dev metric drops."""

from __future__ import annotations

from typing import Any

TOLERANCE = 0.01  # "within 1 point" of the dense dev metric


def kept_within(rows: list[dict[str, Any]], dense: float, *, order: str, value: str, dev: str = "dev") -> float:
    """``value`` of the last row (rows ordered by ``order``) whose ``dev`` metric, there and at
    every earlier row, is within ``TOLERANCE`` of ``dense``; 0 when the first row already drops."""
    kept = 0.0
    for row in sorted(rows, key=lambda r: r[order]):
        if row[dev] < dense - TOLERANCE:
            break
        kept = row[value]
    return kept
