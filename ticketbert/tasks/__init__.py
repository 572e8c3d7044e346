"""Tasks as data: declarations (YAML), the registries they name, and resolved tasks.

Names load on first use, so that checking a declaration does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ticketbert.tasks.definition import DatasetSource, TaskDefinition
from ticketbert.tasks.shipped import SHIPPED_NAMES, shipped_definitions, shipped_task
from ticketbert.tasks.task import Task

_LAZY = {"ticketbert.tasks.model": ("TicketBertModel", "build_model")}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        return getattr(import_module(_MODULE_OF[name]), name)
    raise AttributeError(f"module 'ticketbert.tasks' has no attribute {name!r}")


__all__ = ["SHIPPED_NAMES", "DatasetSource", "Task", "TaskDefinition", "shipped_definitions", "shipped_task", *_MODULE_OF]
