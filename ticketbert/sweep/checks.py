"""Load-time checks of a sweep (``ticketbert.checks`` for what every run needs, plus the search
space, the search metric and the prune options across the grid's trials). Torch-free."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, get_args

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ticketbert.checks import changed_options, check_environment, check_writable, reads, where_used
from ticketbert.config import ConfigError, PruneConfig, RunConfig
from ticketbert.sweep.config import SweepConfig
from ticketbert.tasks.definition import TaskDefinition

SPLIT_METRICS = ("overall", "loss")  # every split of every run
EPOCH_METRICS = ("epoch_seconds", "train_flops", "lr")
_BOUNDS = ((annotated_types.Gt, "gt", ">"), (annotated_types.Ge, "ge", ">="), (annotated_types.Lt, "lt", "<"),
           (annotated_types.Le, "le", "<="))


def run_field(dotted: str) -> FieldInfo:
    """The pydantic field of RunConfig at ``section.name``."""
    section, name = dotted.split(".", 1)
    model: type[BaseModel] = RunConfig.model_fields[section].annotation
    return model.model_fields[name]


def field_bounds(info: FieldInfo) -> list[tuple[str, float]]:
    """The field's own numeric limits as (operator, bound), read from its metadata."""
    found = []
    for item in info.metadata:
        for kind, attribute, operator in _BOUNDS:
            if isinstance(item, kind):
                found.append((operator, getattr(item, attribute)))
    return found


def is_integer_field(info: FieldInfo) -> bool:
    return info.annotation is int or int in get_args(info.annotation)


def _holds(value: float, operator: str, bound: float) -> bool:
    return {">": value > bound, ">=": value >= bound, "<": value < bound, "<=": value <= bound}[operator]


def searched_prunes(config: SweepConfig) -> list[PruneConfig]:
    """The prune sections of the trials a search tunes: the dense fine-tunes of a post-hoc sweep,
    the pruning trials otherwise."""
    if config.grid.mode == "posthoc":
        return [config.base.prune.model_copy(update={"method": "none", "sparsity": 0.0})]
    return trial_prunes(config)


def trial_prunes(config: SweepConfig) -> list[PruneConfig]:
    """The prune section of one pruning trial per grid method (the dense baseline only when alone)."""
    methods = [m for m in config.grid.methods if m != "none"] or ["none"]
    sparsity = max(config.grid.sparsities)
    return [config.base.prune.model_copy(update={
        "method": m, "mode": config.grid.mode, "sparsity": 0.0 if m == "none" else sparsity,
        "criterion": config.grid.criteria.get(m)}) for m in methods]


def check_search(config: SweepConfig) -> None:
    """Each search dimension within its field's own limits, whole numbers for integer fields, read
    by the trials it tunes; the search metric one that every trial reports."""
    search = config.search
    if search is None:
        return
    for key, dim in search.space.items():
        field = f"search.space.{key}"
        info = run_field(key)
        for operator, bound in field_bounds(info):
            for end, value in (("low", dim.low), ("high", dim.high)):
                if not _holds(value, operator, bound):
                    raise ConfigError(f"{field}.{end}: {value:g} is outside {key}'s own limits: allowed "
                                      f"{' and '.join(f'{o} {b:g}' for o, b in field_bounds(info))}")
        if is_integer_field(info) and not (dim.integer and dim.low == int(dim.low) and dim.high == int(dim.high)):
            raise ConfigError(f"{field}: {key} is an integer field: set integer: true and whole-number low/high "
                              f"(got low {dim.low:g}, high {dim.high:g}, integer {dim.integer})")
        section, option = key.split(".", 1)
        if section == "prune" and not any(reads(prune, option) for prune in searched_prunes(config)):
            raise ConfigError(f"{field}: the searched trials (grid.mode {config.grid.mode}) never read {key}: "
                              f"{where_used(option)}")
    allowed = logged_metrics([config.base.task_definition(task) for task in config.grid.tasks])
    if search.metric not in allowed:
        raise ConfigError(f"search.metric: {search.metric!r} is not reported by every trial; choose from "
                          f"{', '.join(sorted(allowed))}")


def logged_metrics(tasks: list[TaskDefinition]) -> set[str]:
    """Metrics every single-task trial of ``tasks`` (their declarations) reports after each epoch."""
    shared = set.intersection(*(set(task.metrics) for task in tasks)) | set(SPLIT_METRICS)
    return {f"{split}/{name}" for split in ("dev", "train") for name in shared} | set(EPOCH_METRICS)


def option_notes(config: SweepConfig) -> list[str]:
    """ConfigError for a ``base.prune`` option no trial reads; a note for one some trials ignore."""
    prunes = trial_prunes(config)
    notes = []
    for option in changed_options(config.base.prune):
        readers = [p.method for p in prunes if reads(p, option)]
        if not readers:
            raise ConfigError(f"base.prune.{option}: {getattr(config.base.prune, option)!r} does nothing in "
                              f"this sweep (methods {', '.join(config.grid.methods)}, grid.mode {config.grid.mode}): "
                              f"{where_used(option)}; remove it")
        if len(readers) < len(prunes):
            ignoring = [p.method for p in prunes if p.method not in readers]
            notes.append(f"note: base.prune.{option} applies to {', '.join(readers)}; "
                         f"{', '.join(ignoring)} ignore it")
    return notes


def check_sweep(config: SweepConfig, *, local_device: bool = True) -> list[str]:
    """Every load-time check of a sweep; the notes to print once (options some methods ignore)."""
    notes = option_notes(config)
    check_search(config)
    check_environment(config.base, local_device=local_device)
    check_writable(config.storage, "storage")
    return notes


def resolved_grid(config: SweepConfig) -> dict[str, Any]:
    """What ``--check`` prints: the resolved sweep and its grid points."""
    return {"sweep": config.model_dump(mode="json"), "trials": [asdict(point) for point in config.trials()]}
