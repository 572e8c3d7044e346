"""SST-5: five-class sentiment of one sentence."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ticketbert.config import ModelConfig
from ticketbert.tasks.base import HubSource, Task, upcast
from ticketbert.tasks.metrics import accuracy, macro_f1

NUM_CLASSES = 5


class SentimentHead(nn.Module):
    """Dropout + linear over the pooled sentence: five logits."""

    def __init__(self, hidden_size: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, NUM_CLASSES)

    def forward(self, pooled: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.dropout(pooled[0]))


class SentimentTask(Task):
    name = "sst"
    files = {"train": "ids-sst-train.csv", "dev": "ids-sst-dev.csv"}
    text_columns = ("sentence",)
    label_column = "sentiment"
    primary_metric = "accuracy"
    hub = HubSource("SetFit/sst5", None, {"train": "train", "dev": "validation"}, ("text",), "label")

    def parse_label(self, raw: str) -> float:
        value = float(raw)
        if value != int(value) or not 0 <= value < NUM_CLASSES:
            raise ValueError(f"sentiment must be an integer in 0..{NUM_CLASSES - 1}, got {raw!r}")
        return value

    def build_head(self, hidden_size: int, config: ModelConfig) -> nn.Module:
        return SentimentHead(hidden_size, config.dropout)

    def loss(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(upcast(outputs), labels.long())

    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """KL(teacher || student) of the class distributions at ``temperature``, times T^2 (Hinton et al.)."""
        log_student = F.log_softmax(upcast(student) / temperature, dim=-1)
        log_teacher = F.log_softmax(upcast(teacher) / temperature, dim=-1)
        return F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean") * temperature ** 2

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=-1)

    def metrics(self, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        return {
            "accuracy": accuracy(predictions, labels),
            "f1": macro_f1(predictions, labels, NUM_CLASSES),
        }
