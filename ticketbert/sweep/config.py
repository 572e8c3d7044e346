"""Sweep configuration: a base run config, a grid, optional Optuna search, resources."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from ticketbert.config import (ConfigError, Criterion, PruneConfig, PruneMethod, RunConfig, SparsityLevel, TaskName,
                               _Strict, check_task_names, config_folder, merge, parse_overrides, read_yaml,
                               resolve_task_paths, unique, validate)
from ticketbert.pruning.methods.description import describe, descriptions, is_dense, method_names
from ticketbert.pruning.nm_pattern import parse_pattern, pattern_text
from ticketbert.sweep.records import DenseGroup, GridPoint
from ticketbert.tasks.definition import TaskDefinition


class GridConfig(_Strict):
    tasks: list[TaskName] = Field(default_factory=lambda: ["sst"], min_length=1)
    # "none" is the dense baseline; other methods are pruned at every sparsity
    methods: list[PruneMethod] = Field(default_factory=lambda: ["magnitude"], min_length=1)
    sparsities: list[SparsityLevel] = Field(default_factory=lambda: [0.5], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    mode: Literal["posthoc", "early_bird", "imp"] = "posthoc"
    criteria: dict[str, Criterion] = Field(default_factory=dict)  # method -> criterion
    # N:M patterns ("2:4") each method that takes one is also pruned at (its sparsity 1 - N/M, once);
    # unstructured points are the sparsities above
    patterns: list[str] = Field(default_factory=list)

    @field_validator("patterns", mode="before")
    @classmethod
    def _known_patterns(cls, patterns: Any) -> Any:
        if not isinstance(patterns, list):
            return patterns
        for pattern in map(pattern_text, patterns):
            parse_pattern(pattern)
        return [pattern_text(p) for p in patterns]

    _unique_values = field_validator("tasks", "methods", "sparsities", "seeds")(unique)

    @field_validator("criteria")
    @classmethod
    def _known_methods(cls, criteria: dict[str, str]) -> dict[str, str]:
        for method, criterion in criteria.items():
            if is_dense(method) or method not in method_names():
                raise ValueError(f"criteria: unknown method {method!r}; known: {', '.join(method_names())}")
            describe(method).check_criterion(criterion)
        return criteria


class SearchDim(_Strict):
    low: float
    high: float
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "SearchDim":
        if not self.low < self.high:
            raise ValueError(f"low must be below high (got {self.low} >= {self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scaled dimension needs low > 0")
        return self


class SearchConfig(_Strict):
    """Optuna search over run-config fields (dotted paths) of the training trials."""

    space: dict[str, SearchDim] = Field(default_factory=dict)
    num_samples: int = Field(4, ge=1)
    metric: str = "dev/overall"
    mode: Literal["max", "min"] = "max"

    @field_validator("space")
    @classmethod
    def _known_fields(cls, space: dict[str, SearchDim]) -> dict[str, SearchDim]:
        allowed = {"train.lr", "model.dropout", "train.weight_decay", "train.warmup_ratio",
                   "prune.early_bird_max_steps", "prune.early_bird_interval", "prune.early_bird_search_lr",
                   "train.epochs"}
        for key in space:
            if key not in allowed:
                raise ValueError(f"search.space: {key!r} is not searchable; choose from {sorted(allowed)}")
        return space


class ResourcesConfig(_Strict):
    cpus_per_trial: float = Field(1.0, gt=0)
    # "auto": a fraction of a GPU per trial when the cluster has GPUs (trials_per_gpu share one)
    gpus_per_trial: float | Literal["auto"] = "auto"
    trials_per_gpu: int = Field(2, ge=1)
    max_concurrent_trials: int | None = Field(None, ge=1)

    @field_validator("gpus_per_trial")
    @classmethod
    def _fraction(cls, value):
        if value != "auto" and not 0 <= value <= 8:
            raise ValueError(f"gpus_per_trial must be 'auto' or in [0, 8] (got {value})")
        return value


class SweepConfig(_Strict):
    name: str = "sweep"
    base: RunConfig = Field(default_factory=RunConfig)
    grid: GridConfig = Field(default_factory=GridConfig)
    search: SearchConfig | None = None
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    max_failures: int = Field(2, ge=0)  # retries of a failed trial
    storage: Path = Path("ray_results")  # Tune results and shared dense models (project-local)

    @model_validator(mode="after")
    def _known_tasks(self) -> "SweepConfig":
        check_task_names(self.grid.tasks, self.base.tasks, "grid.tasks")
        return self

    def definitions(self) -> dict[str, TaskDefinition]:
        """The declaration of every task of the grid, by name."""
        return {name: self.base.task_definition(name) for name in self.grid.tasks}

    @model_validator(mode="after")
    def _methods_fit_mode(self) -> "SweepConfig":
        for method in self.grid.methods:  # base.prune's options (repair, budget, ...) apply where taken
            try:
                self.base.prune.for_method(method, mode=self.grid.mode, criterion=self.grid.criteria.get(method))
            except ValidationError as exc:
                reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
                raise ValueError(f"grid.methods: {method} with base.prune: {reason}") from None
        takers = [m for m in self.grid.methods if not is_dense(m) and describe(m).takes("pattern")]
        if self.grid.patterns and not takers:
            raise ValueError(f"grid.patterns: none of grid.methods takes a pattern (methods that do: "
                             f"{', '.join(d.name for d in descriptions() if d.takes('pattern'))})")
        for pattern in self.grid.patterns:
            try:
                PruneConfig.model_validate({"method": takers[0], "mode": self.grid.mode, "pattern": pattern})
            except ValidationError as exc:
                raise ValueError(f"grid.patterns: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
        return self

    def trials(self) -> list[GridPoint]:
        """Every grid point of the pruning stage: task x method x sparsity x seed, plus task x
        method x pattern x seed for the methods that take a pattern."""
        points = []
        for task, method, sparsity, seed in itertools.product(self.grid.tasks, self.grid.methods,
                                                              self.grid.sparsities, self.grid.seeds):
            if is_dense(method) and sparsity != self.grid.sparsities[0]:
                continue  # the dense baseline once per task and seed
            points.append(GridPoint(task=task, method=method, sparsity=0.0 if is_dense(method) else sparsity,
                                    seed=seed, criterion=self.grid.criteria.get(method), pattern=None))
        for task, method, pattern, seed in itertools.product(self.grid.tasks, self.grid.methods, self.grid.patterns,
                                                             self.grid.seeds):
            if not is_dense(method) and describe(method).takes("pattern"):
                points.append(GridPoint(task=task, method=method, sparsity=parse_pattern(pattern).sparsity,
                                        seed=seed, criterion=self.grid.criteria.get(method), pattern=pattern))
        return points

    def groups(self) -> list[DenseGroup]:
        """The dense fine-tunes the post-hoc trials share: one per task x seed."""
        return [DenseGroup(t, s) for t, s in itertools.product(self.grid.tasks, self.grid.seeds)]


# run-config fields that every trial gets from the grid or the sweep, and where to set them instead
GRID_CONTROLLED = {
    "sparsity": "grid.sparsities", "prune.sparsity": "grid.sparsities", "sparsities": "grid.sparsities",
    "method": "grid.methods", "prune.method": "grid.methods", "methods": "grid.methods",
    "task": "grid.tasks", "train.tasks": "grid.tasks",
    "seed": "grid.seeds", "train.seed": "grid.seeds", "seeds": "grid.seeds",
    "criterion": "grid.criteria", "prune.criterion": "grid.criteria", "criteria": "grid.criteria",
    "mode": "grid.mode", "prune.mode": "grid.mode", "prune.pattern": "grid.patterns", "pattern": "grid.patterns",
    "prune.dense_dir": "grid.mode", "output_dir": "storage", "tracking.experiment": "name",
}


def grid_field_hint(field: str, value: Any) -> str:
    """The error for a run field the grid (or the sweep) sets: which sweep field to use."""
    target = GRID_CONTROLLED[field]
    if isinstance(value, list):
        value = f"[{','.join(str(v) for v in value)}]"
    if target == "grid.criteria":
        example = f"grid.criteria={{<method>: {value}}}"
    elif target.endswith("s") and target.startswith("grid.") and not str(value).startswith("["):
        example = f"{target}=[{value}]"
    else:
        example = f"{target}={value}"
    what = "the grid" if target.startswith("grid.") else "the sweep"
    return f"{field} is set by {what} for every trial: use {example}"


def _flat_keys(nested: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict) and f"{prefix}{key}" not in GRID_CONTROLLED:
            flat.update(_flat_keys(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_grid_controlled(base: dict[str, Any], source: str) -> None:
    """ConfigError if ``base`` (the run-config part of a sweep) sets a field the grid controls."""
    for field, value in _flat_keys(base).items():
        if field in GRID_CONTROLLED:
            raise ConfigError(f"{source}: {grid_field_hint(field, value)}")


def load_sweep_config(path: str | Path | None, overrides: list[str] | None = None) -> SweepConfig:
    """A validated SweepConfig from YAML plus dotted overrides (``data.dir=...`` is short for
    ``base.data.dir=...``: the first key of the run config's sections may be given directly).
    A run field that the grid sets for every trial (``sparsity``, ``method``, ``task``,
    ``seed``...) is an error naming the grid field to use instead."""
    raw = read_yaml(Path(path)) if path is not None else {}
    source = str(path) if path is not None else "<sweep>"
    if "tasks" in raw:  # task declarations at the top level: the run config's tasks
        raw = {**raw, "base": merge(raw.get("base") or {}, {"tasks": raw["tasks"]})}
        del raw["tasks"]
    check_grid_controlled(raw.get("base") or {}, source)
    sweep_keys = set(SweepConfig.model_fields)
    expanded = []
    for item in overrides or []:
        key = item.split("=", 1)[0]
        field = key.removeprefix("base.")
        if field in GRID_CONTROLLED and (key.startswith("base.") or field.split(".", 1)[0] not in sweep_keys):
            value = yaml.safe_load(item.split("=", 1)[1])
            raise ConfigError(f"override {item!r}: {grid_field_hint(field, value)}")
        expanded.append(item if key.split(".", 1)[0] in sweep_keys else f"base.{item}")
    raw = merge(raw, parse_overrides(expanded))
    raw = {**raw, "base": resolve_task_paths(raw.get("base") or {}, config_folder(path))}
    config = validate(SweepConfig, raw, source)
    if not config.trials():
        raise ConfigError(f"{path}: the grid is empty")
    return config
