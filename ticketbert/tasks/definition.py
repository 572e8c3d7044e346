"""A task declared as data (YAML): its kind, columns, labels, rows, metrics, head and loss.

Torch-free: a run or sweep config's ``tasks:`` mapping is checked on load, before any model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ticketbert.tasks.catalog import CLASSIFICATION, DEFAULTS, HEADS, KINDS, LOSSES, METRICS, REGRESSION

SPLITS = ("train", "dev", "test")
LabelValue = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSource(_Strict):
    """A Hugging Face ``datasets`` source: a ``save_to_disk`` folder or a hub id (+ config)."""

    # a save_to_disk folder, or a hub id and its configuration name
    path: str
    name: str | None = None
    # the task's split -> the dataset's split
    splits: dict[Literal["train", "dev", "test"], str] = Field(default_factory=lambda: {"train": "train",
                                                                                           "dev": "validation"})
    # the task's column (text/label) -> the dataset's column, where they differ
    columns: dict[str, str] = Field(default_factory=dict)


class TaskDefinition(_Strict):
    """What a task is. Defaults per kind fill ``head``, ``loss``, ``metrics`` and ``primary``."""

    # classification (one or two texts -> one of the classes) or regression (-> a score)
    kind: str
    # one text column, or two for a pair
    text: tuple[str, ...]
    label: str
    # classification: the raw label values in id order, or raw value -> id; or ``num_labels``
    # integer labels 0..n-1; none of them: inferred from train
    labels: list[LabelValue] | dict[LabelValue, int] | None = None
    num_labels: int | None = Field(None, ge=2)
    # regression: allowed score range (inclusive)
    range: tuple[float, float] | None = None
    # rows: files by split (csv, tsv, jsonl, parquet; by extension unless ``format`` says)
    files: dict[Literal["train", "dev", "test"], Path] | None = None
    format: Literal["csv", "tsv", "jsonl", "parquet"] | None = None
    dataset: DatasetSource | None = None
    # without a dev split: this fraction of train, drawn with the run's seed
    dev_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    # a generator of ticketbert.data.synthetic (data.source=synthetic); shipped tasks only
    synthetic: str | None = None
    # logged name -> registered metric (a list: their own names); the primary one ranks runs
    metrics: dict[str, str] | None = None
    primary: str | None = None
    # pairs: each text encoded alone and combined by the head (bi), or one input (cross)
    encoding: Literal["bi", "cross"] = "cross"
    # bi-encoded pairs: the head sees [u; v] or [u; v; |u-v|; u*v]
    features: Literal["concat", "concat_diff_prod"] = "concat_diff_prod"
    head: str | None = None
    loss: str | None = None
    # rows with an empty text or label: skipped with a warning, or an error naming the row
    on_malformed: Literal["skip", "error"] = "skip"
    # how analyses name the task ("SST", "Quora"); default: the task's name
    display: str | None = None

    @field_validator("text", mode="before")
    @classmethod
    def _text_columns(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("text")
    @classmethod
    def _one_or_two(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) not in (1, 2):
            raise ValueError("one column, or a list of two for a pair")
        return value

    @field_validator("metrics", mode="before")
    @classmethod
    def _metric_list(cls, value: Any) -> Any:
        return {name: name for name in value} if isinstance(value, (list, tuple)) else value

    @field_validator("files")
    @classmethod
    def _has_train(cls, files: dict | None) -> dict | None:
        if files is not None and "train" not in files:
            raise ValueError("files needs a train file (dev and test are optional)")
        return files

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or raw.get("kind") not in KINDS:
            return raw
        defaults = DEFAULTS[raw["kind"]]
        filled = {key: value for key, value in defaults.items() if raw.get(key) is None}
        if "metrics" in raw and raw.get("primary") is None and raw["metrics"]:
            metrics = raw["metrics"]
            filled["primary"] = metrics[0] if isinstance(metrics, (list, tuple)) else next(iter(metrics))
        return {**raw, **filled}

    @model_validator(mode="after")
    def _consistent(self) -> "TaskDefinition":
        if self.kind not in KINDS:
            raise ValueError(f"kind: unknown task kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.files is None and self.dataset is None and self.synthetic is None:
            raise ValueError("rows: give files (train, dev) or dataset")
        classification = self.kind == CLASSIFICATION
        if not classification and (self.labels is not None or self.num_labels is not None):
            raise ValueError("labels/num_labels: a regression task has scores, not labels (use range)")
        if classification and self.range is not None:
            raise ValueError("range: applies to regression tasks, not classification")
        if self.labels is not None and self.num_labels is not None:
            raise ValueError("labels and num_labels: give one of them")
        if isinstance(self.labels, dict) and sorted(self.labels.values()) != list(range(len(set(self.labels.values())))):
            raise ValueError(f"labels: ids must be 0..n-1, got {sorted(set(self.labels.values()))}")
        if self.labels is not None and len(set(map(str, self.labels))) < 2:
            raise ValueError("labels: a classification task needs at least two labels")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range: low must be below high, got {list(self.range)}")
        self._check_parts()
        return self

    def _check_parts(self) -> None:
        head, loss = HEADS.get(self.head), LOSSES.get(self.loss)
        for part, entry in (("head", head), ("loss", loss)):
            if self.kind not in entry.kinds:
                raise ValueError(f"{part}: {entry.name} serves {'/'.join(sorted(entry.kinds))} tasks, not {self.kind}")
        if head.options.get("pairs") == "bi" and (len(self.text) != 2 or self.encoding != "bi"):
            raise ValueError(f"head: {head.name} compares two separately encoded texts: needs a pair with encoding bi")
        outputs = self.head_outputs
        if outputs != loss.options["outputs"]:
            raise ValueError(f"loss: {loss.name} needs {'one output' if loss.options['outputs'] == 'one' else 'one output per class'}"
                             f", head {head.name} gives {'one' if outputs == 'one' else 'one per class'}")
        classes = loss.options.get("classes")
        if classes is not None and self.known_label_count not in (None, classes):
            raise ValueError(f"loss: {loss.name} needs {classes} labels, the task has {self.known_label_count}")
        for logged, name in self.metrics.items():
            metric = METRICS.get(name)
            if self.kind not in metric.kinds:
                raise ValueError(f"metrics: {logged} ({name}) applies to {'/'.join(sorted(metric.kinds))} tasks, "
                                 f"not {self.kind}")
            wanted = metric.options.get("classes")
            if wanted is not None and self.known_label_count not in (None, wanted):
                raise ValueError(f"metrics: {name} needs {wanted} labels, the task has {self.known_label_count}")
        if self.primary not in self.metrics:
            raise ValueError(f"primary: {self.primary!r} is not one of the metrics {list(self.metrics)}")

    @property
    def head_outputs(self) -> str:
        """'one' (a single logit or score) or 'classes' (a logit per class)."""
        outputs = HEADS.get(self.head).options["outputs"]
        if outputs == "per_kind":
            return "classes" if self.kind == CLASSIFICATION else "one"
        return outputs

    @property
    def known_label_count(self) -> int | None:
        """Number of classes when declared (None: regression, or inferred from train)."""
        if self.num_labels is not None:
            return self.num_labels
        return len(self.labels) if self.labels is not None else None

    @property
    def segments(self) -> int:
        """Separately encoded inputs per example: two for a bi-encoded pair, else one."""
        return 2 if len(self.text) == 2 and self.encoding == "bi" else 1

    def metric_label(self, name: str) -> str:
        """The primary metric in words, for task ``name``: 'SST accuracy', 'sst2 accuracy'."""
        return f"{self.display or name} {self.primary}"

    @property
    def is_regression(self) -> bool:
        return self.kind == REGRESSION

    def digest(self) -> str:
        """Hash of what defines the task's targets, model and metrics (not where its rows live):
        part of a run's identity and its data fingerprint."""
        content = self.model_dump(mode="json", exclude={"files", "dataset", "synthetic", "display"})
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]
