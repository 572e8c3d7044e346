"""The tasks of a run config, read and checked before any model or tokenizer is loaded. Torch-free."""

from __future__ import annotations

from ticketbert.config import RunConfig
from ticketbert.data.sources import RawTaskData, read_task
from ticketbert.tasks.definition import TaskDefinition


def run_definitions(config: RunConfig) -> dict[str, TaskDefinition]:
    """The declaration of every task the run trains, by name."""
    return {name: config.task_definition(name) for name in config.train.tasks}


def read_run_data(config: RunConfig) -> list[RawTaskData]:
    """Read and check every task of the run (labels resolved, rows parsed)."""
    return [read_task(config.data, name, definition, config.train.seed)
            for name, definition in run_definitions(config).items()]
