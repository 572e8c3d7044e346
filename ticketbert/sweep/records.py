"""What the sweep's modules pass each other: grid points, dense groups and trial results. Ray
Tune never sees these: its param space and the trials' reports stay plain JSON-able dicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real
from typing import Any


@dataclass(frozen=True)
class DenseGroup:
    """The dense fine-tune that the post-hoc trials of one task and seed share."""

    task: str
    seed: int

    @property
    def name(self) -> str:
        """The group as the summary names it: 'sst/s0'."""
        return f"{self.task}/s{self.seed}"


@dataclass(frozen=True)
class GridPoint:
    """One trial of the pruning stage; ``pattern`` is its N:M pattern ("2:4") or None."""

    task: str
    method: str
    sparsity: float
    seed: int
    criterion: str | None
    pattern: str | None

    @property
    def group(self) -> DenseGroup:
        return DenseGroup(self.task, self.seed)

    @property
    def method_label(self) -> str:
        """The method with its N:M pattern, as the summary shows it: 'wanda 2:4'."""
        return f"{self.method} {self.pattern}" if self.pattern else self.method


@dataclass(frozen=True)
class TrialResult:
    """A trial's outcome: the numbers of its final report and its saved model's folder, or its error."""

    label: str
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    model_dir: str | None = None

    @classmethod
    def reported(cls, label: str, report: dict[str, Any]) -> TrialResult:
        """From a finished trial's final Tune report (numbers, plus text such as its run folder)."""
        numbers = {key: float(value) for key, value in report.items() if isinstance(value, Real)}
        return cls(label, numbers, model_dir=report.get("model_dir"))

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def dev(self) -> float | None:
        """The primary dev metric (``dev/overall``) of a trial that finished and reported it."""
        return self.metrics.get("dev/overall") if self.ok else None
