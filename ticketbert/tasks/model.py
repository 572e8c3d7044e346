"""The ticketbert task model: one shared encoder, one head per task."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import torch
from torch import nn

from ticketbert.config import ModelConfig, RunConfig
from ticketbert.data.batching import Batch
from ticketbert.models.encoder import load_encoder, pool
from ticketbert.tasks.labels import declared_codec
from ticketbert.tasks.shipped import shipped_task
from ticketbert.tasks.task import Task


class TicketBertModel(nn.Module):
    """A BERT-family ``encoder`` with a head per task of ``tasks``; single-task models have one head."""

    def __init__(self, encoder: nn.Module, heads: dict[str, nn.Module], config: ModelConfig | None = None,
                 tasks: dict[str, Task] | None = None):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)
        self.config = config or ModelConfig()
        self.task_specs: dict[str, Task] = dict(tasks or {})
        # inputs the encoder's forward takes (DistilBERT and ModernBERT take no token types)
        self._takes_token_types = "token_type_ids" in _forward_arguments(encoder)

    @property
    def tasks(self) -> list[str]:
        return list(self.heads)

    def embed(self, batch: Batch) -> list[torch.Tensor]:
        """Pooled embedding of each segment of the batch (one encoder pass for all)."""
        extra = {"token_type_ids": batch.token_type_ids} if self._takes_token_types else {}
        hidden = self.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask, **extra).last_hidden_state
        pooled = pool(hidden, batch.attention_mask, self.config.pooling)
        return list(pooled.chunk(batch.segments))

    def forward(self, task: str, batch: Batch) -> torch.Tensor:
        """Raw outputs of ``task``'s head (logits or scores)."""
        return self.heads[task](self.embed(batch))

    def loss(self, task: str, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``task``'s loss of raw ``outputs``."""
        return self.task_specs[task].loss(outputs, labels)

    def distill_loss(self, task: str, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """``task``'s distillation loss of the ``student``'s outputs towards the ``teacher``'s."""
        return self.task_specs[task].distill_loss(student, teacher, temperature)

    def task_loss(self, task: str, batch: Batch) -> torch.Tensor:
        """``task``'s training loss on ``batch`` (what gradient pruning criteria measure)."""
        return self.loss(task, self(task, batch), batch.labels)

    # what save_pruned stores and load_pruned rebuilds the model from
    def saved_meta(self) -> dict[str, Any]:
        return {"class": f"{type(self).__module__}:{type(self).__qualname__}", "tasks": self.tasks,
                "model": self.config.model_dump(mode="json"),
                "task_definitions": {name: self.task_specs[name].to_json() for name in self.tasks}}

    @classmethod
    def from_saved(cls, encoder: nn.Module, meta: dict[str, Any]) -> "TicketBertModel":
        if "task_definitions" in meta:
            config = ModelConfig.model_validate(meta["model"])
            tasks = {name: Task.from_json(data) for name, data in meta["task_definitions"].items()}
        else:  # saved before tasks were declarations: shipped tasks, Quora's settings in the model's
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                run = RunConfig.model_validate({"model": meta["model"]})
            config = run.model
            tasks = {name: Task(name, run.task_definition(name), declared_codec(run.task_definition(name)))
                     for name in meta["tasks"]}
        heads = {name: tasks[name].build_head(encoder.config.hidden_size, config.dropout) for name in meta["tasks"]}
        return cls(encoder, heads, config, tasks)


def _forward_arguments(module: nn.Module) -> set[str]:
    return set(inspect.signature(module.forward).parameters)


def build_model(config: ModelConfig, tasks: list[Task | str]) -> TicketBertModel:
    """The configured encoder with a fresh head for each of ``tasks`` (resolved tasks, or names
    of shipped ones)."""
    tasks = [shipped_task(task) if isinstance(task, str) else task for task in tasks]
    encoder = load_encoder(config.encoder)
    hidden = encoder.config.hidden_size
    heads = {task.name: task.build_head(hidden, config.dropout) for task in tasks}
    return TicketBertModel(encoder, heads, config, {task.name: task for task in tasks})
