"""The shipped task declarations (``definitions/*.yaml``): SST-5, Quora and STS-B in the CS224N
format. Their relative file names resolve against the run's data directory."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import yaml

from ticketbert.tasks.definition import TaskDefinition
from ticketbert.tasks.labels import declared_codec
from ticketbert.tasks.task import Task

DEFINITIONS_DIR = Path(__file__).resolve().parent / "definitions"
SHIPPED_NAMES: tuple[str, ...] = tuple(sorted(path.stem for path in DEFINITIONS_DIR.glob("*.yaml")))


@lru_cache(maxsize=1)
def shipped_raw() -> Mapping[str, dict]:
    """Each shipped task's YAML mapping, by task name."""
    return MappingProxyType({name: yaml.safe_load((DEFINITIONS_DIR / f"{name}.yaml").read_text())
                             for name in SHIPPED_NAMES})


@lru_cache(maxsize=1)
def shipped_definitions() -> Mapping[str, TaskDefinition]:
    """The shipped task definitions, by task name."""
    return MappingProxyType({name: TaskDefinition.model_validate(raw) for name, raw in shipped_raw().items()})


def shipped_task(name: str) -> Task:
    """The shipped task ``name`` resolved with its declared labels (no data read)."""
    definition = shipped_definitions()[name]
    return Task(name, definition, declared_codec(definition))
