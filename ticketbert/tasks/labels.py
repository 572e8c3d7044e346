"""Reading one label or score cell: class ids from declared or inferred labels, finite scores
inside a range. Errors are ValueError messages that the reader prefixes with file, row and column."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from ticketbert.tasks.definition import TaskDefinition


def label_key(raw: object) -> str:
    """The text a raw label is matched by: JSON 1, 1.0, CSV "1" all read as "1"; bools as true/false."""
    if isinstance(raw, bool):
        return str(raw).lower()
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).strip()


def parse_number(raw: object) -> float:
    """A finite float from a cell; ValueError for text, NaN and infinities (1e999 included)."""
    if isinstance(raw, bool):
        raise ValueError(f"expected a number, got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {raw!r}")
    return value


@dataclass(frozen=True)
class LabelCodec:
    """Raw cells to training targets: class ids (``names`` in id order) or scores (``names`` None)."""

    names: tuple[str, ...] | None
    range: tuple[float, float] | None = None
    integer_ids: bool = False  # num_labels: the raw values are the ids themselves

    def parse(self, raw: object) -> float:
        if self.names is None:
            value = parse_number(raw)
            if self.range is not None and not self.range[0] <= value <= self.range[1]:
                raise ValueError(f"score {raw!r} outside range [{self.range[0]:g}, {self.range[1]:g}]")
            return value
        if self.integer_ids:
            value = parse_number(raw)
            if not value.is_integer() or not 0 <= value < len(self.names):
                raise ValueError(f"label must be an integer in 0..{len(self.names) - 1}, got {raw!r}")
            return value
        key = label_key(raw)
        if key not in self._ids:
            raise ValueError(f"label {raw!r} is not one of the labels {list(self.names)}")
        return float(self._ids[key])

    @property
    def _ids(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names or ())}


def declared_codec(definition: TaskDefinition) -> LabelCodec | None:
    """The codec the declaration fixes; None when classification labels are to be inferred."""
    if definition.is_regression:
        return LabelCodec(None, definition.range)
    if definition.num_labels is not None:
        return LabelCodec(tuple(str(i) for i in range(definition.num_labels)), integer_ids=True)
    if isinstance(definition.labels, dict):
        by_id = sorted(definition.labels.items(), key=lambda item: item[1])
        return LabelCodec(tuple(label_key(name) for name, _ in by_id))
    if definition.labels is not None:
        return LabelCodec(tuple(label_key(value) for value in definition.labels))
    return None


def _order(keys: Iterable[str]) -> list[str]:
    keys = sorted(set(keys))
    try:
        return sorted(keys, key=float)
    except ValueError:
        return keys


def inferred_codec(raw_labels: Iterable[object]) -> LabelCodec:
    """Labels seen in train, in numeric order when all are numbers, else alphabetical."""
    return LabelCodec(tuple(_order(label_key(raw) for raw in raw_labels)))
