"""STS-B: similarity of two sentences on a 0-5 scale."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ticketbert.config import ModelConfig
from ticketbert.tasks.base import HubSource, Task, upcast
from ticketbert.tasks.metrics import pearson, spearman

MAX_SCORE = 5.0


class SimilarityHead(nn.Module):
    """Dropout + linear projection of each sentence; cosine similarity scaled to 0-5."""

    def __init__(self, hidden_size: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(hidden_size, hidden_size)
        with torch.no_grad():  # start at the identity: keeps the encoder's similarity geometry
            self.projection.weight.copy_(torch.eye(hidden_size))
            self.projection.bias.zero_()

    def forward(self, pooled: list[torch.Tensor]) -> torch.Tensor:
        u, v = (self.projection(self.dropout(p)) for p in pooled)
        return MAX_SCORE * F.cosine_similarity(upcast(u), upcast(v), dim=-1)


class SimilarityTask(Task):
    name = "sts"
    files = {"train": "sts-train.csv", "dev": "sts-dev.csv"}
    text_columns = ("sentence1", "sentence2")
    label_column = "similarity"
    primary_metric = "pearson"
    hub = HubSource("nyu-mll/glue", "stsb", {"train": "train", "dev": "validation"},
                    ("sentence1", "sentence2"), "label")

    def parse_label(self, raw: str) -> float:
        value = float(raw)
        if not 0.0 <= value <= MAX_SCORE:
            raise ValueError(f"similarity must be in 0..{MAX_SCORE:g}, got {raw!r}")
        return value

    def build_head(self, hidden_size: int, config: ModelConfig) -> nn.Module:
        return SimilarityHead(hidden_size, config.dropout)

    def segments(self, config: ModelConfig) -> int:
        return 2

    def loss(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(upcast(outputs), labels.to(upcast(outputs).dtype))

    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """Mean squared difference of the predicted scores (a regression: no temperature)."""
        return F.mse_loss(upcast(student), upcast(teacher).detach())

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs

    def metrics(self, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        return {"pearson": pearson(predictions, labels), "spearman": spearman(predictions, labels)}
