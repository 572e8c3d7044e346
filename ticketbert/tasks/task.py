"""A resolved task: its definition plus the labels it has (declared or inferred from train).
Everything task-specific that the loop, pruners and sweep need; torch is imported on first use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ticketbert.tasks.catalog import HEADS, LOSSES, METRICS
from ticketbert.tasks.definition import TaskDefinition
from ticketbert.tasks.labels import LabelCodec


@dataclass(frozen=True)
class Task:
    """Task ``name``: its declaration and the codec of its labels (what its rows and head use)."""

    name: str
    definition: TaskDefinition
    codec: LabelCodec

    @property
    def label_column(self) -> str:
        return self.definition.label

    @property
    def primary_metric(self) -> str:
        return self.definition.primary

    @property
    def num_labels(self) -> int | None:
        return None if self.codec.names is None else len(self.codec.names)

    def segments(self) -> int:
        """How many separately encoded inputs an example has (1 or 2)."""
        return self.definition.segments

    def parse_label(self, raw: object) -> float:
        """The target of a raw label cell; ValueError naming what is wrong."""
        return self.codec.parse(raw)

    def build_head(self, hidden_size: int, dropout: float):
        """A fresh head over pooled embeddings of width ``hidden_size``."""
        d = self.definition
        outputs = self.num_labels if d.head_outputs == "classes" else 1
        scale = d.range[1] if d.range is not None else None
        return HEADS.get(d.head).load()(hidden_size, outputs, dropout=dropout, segments=d.segments,
                                        features=d.features, scale=scale)

    def _loss(self):
        return LOSSES.get(self.definition.loss).load()

    def loss(self, outputs, labels):
        """Mean loss of a batch."""
        return self._loss().loss(outputs, labels)

    def distill_loss(self, student, teacher, temperature: float):
        """Mean loss pulling the student's raw outputs towards the teacher's (distillation)."""
        return self._loss().distill(student, teacher, temperature)

    def predict(self, outputs):
        """Predictions in label space (class ids or scores)."""
        return self._loss().predict(outputs)

    def metrics(self, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Every declared metric of a whole split, by its logged name."""
        return {logged: METRICS.get(name).load()(predictions, labels, self.num_labels)
                for logged, name in self.definition.metrics.items()}

    def to_json(self) -> dict[str, Any]:
        """The resolved definition (labels included) as plain JSON: what a saved model carries."""
        return {"name": self.name, "definition": self.definition.model_dump(mode="json", exclude_none=True),
                "labels": list(self.codec.names) if self.codec.names is not None else None,
                "integer_ids": self.codec.integer_ids}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Task":
        definition = TaskDefinition.model_validate(data["definition"])
        names = tuple(data["labels"]) if data["labels"] is not None else None
        return cls(data["name"], definition, LabelCodec(names, definition.range, data.get("integer_ids", False)))
