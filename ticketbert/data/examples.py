"""The raw unit of data: texts and a label, plus the error type of this package."""

from __future__ import annotations

from dataclasses import dataclass


class DataError(ValueError):
    """Input data is unusable; the message names the file (and row) at fault."""


@dataclass(frozen=True)
class Example:
    texts: tuple[str, ...]
    label: float
