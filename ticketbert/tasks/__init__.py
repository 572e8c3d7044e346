"""Tasks as data: declarations (YAML), the registries they name, and resolved tasks.

Torch-free; the task model (encoder + heads) is ``ticketbert.tasks.model``.
"""

from ticketbert.tasks.definition import DatasetSource, TaskDefinition
from ticketbert.tasks.shipped import SHIPPED_NAMES, shipped_definitions, shipped_task
from ticketbert.tasks.task import Task

__all__ = ["SHIPPED_NAMES", "DatasetSource", "Task", "TaskDefinition", "shipped_definitions", "shipped_task"]
