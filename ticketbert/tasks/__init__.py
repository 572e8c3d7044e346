"""The task registry: one object per task, looked up by name."""

from ticketbert.tasks.base import HubSource, Task
from ticketbert.tasks.para import ParaphraseTask
from ticketbert.tasks.sst import SentimentTask
from ticketbert.tasks.sts import SimilarityTask

TASKS: dict[str, Task] = {task.name: task for task in (SentimentTask(), ParaphraseTask(), SimilarityTask())}


def get_task(name: str) -> Task:
    """The task called ``name``; KeyError naming the known ones otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known: {sorted(TASKS)}") from None


__all__ = ["TASKS", "HubSource", "Task", "get_task"]
