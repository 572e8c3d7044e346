"""What a task is: how its rows read, its head, its loss, its metrics."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ticketbert.config import ModelConfig


def upcast(tensor: torch.Tensor) -> torch.Tensor:
    """Half-precision outputs (bf16 autocast) to float32 for losses; float32/64 unchanged."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


@dataclass(frozen=True)
class HubSource:
    """Where a task lives on the Hugging Face hub and how its columns map."""

    path: str
    name: str | None
    splits: dict[str, str]  # the task's split -> hub split
    text_columns: tuple[str, ...]
    label_column: str


class Task(ABC):
    """Everything task-specific. The loop, pruners and sweep only call these methods."""

    name: str
    files: dict[str, str]  # split -> CS224N file name
    text_columns: tuple[str, ...]
    label_column: str
    primary_metric: str
    hub: HubSource

    @abstractmethod
    def parse_label(self, raw: str) -> float:
        """The label of a CSV cell; ValueError if empty or out of range."""

    @abstractmethod
    def build_head(self, hidden_size: int, config: ModelConfig) -> nn.Module:
        """The head: takes the pooled embedding of each segment, returns raw outputs."""

    @abstractmethod
    def loss(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean loss of a batch."""

    @abstractmethod
    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """Mean loss pulling the ``student``'s raw outputs towards the ``teacher``'s (distillation)."""

    @abstractmethod
    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Predictions in label space (class ids or scores)."""

    @abstractmethod
    def metrics(self, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Metrics of a whole split."""

    def segments(self, config: ModelConfig) -> int:
        """How many separately encoded inputs an example has (1 or 2)."""
        return len(self.text_columns)
