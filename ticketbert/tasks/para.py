"""Quora paraphrase detection: is sentence 2 a duplicate of sentence 1."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ticketbert.config import ModelConfig
from ticketbert.tasks.base import HubSource, Task, upcast
from ticketbert.tasks.metrics import accuracy, binary_f1


class ParaphraseHead(nn.Module):
    """Bi-encoder: [u; v] (optionally with |u-v| and u*v) -> dropout -> linear -> one logit.
    Cross-encoder: the pair's pooled embedding -> dropout -> linear -> one logit."""

    def __init__(self, hidden_size: int, dropout: float, features: str, cross: bool):
        super().__init__()
        self.cross = cross
        self.with_diff_prod = features == "concat_diff_prod" and not cross
        width = hidden_size * (1 if cross else 4 if self.with_diff_prod else 2)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, 1)

    def forward(self, pooled: list[torch.Tensor]) -> torch.Tensor:
        if self.cross:
            features = pooled[0]
        else:
            u, v = pooled
            parts = [u, v, (u - v).abs(), u * v] if self.with_diff_prod else [u, v]
            features = torch.cat(parts, dim=-1)
        return self.classifier(self.dropout(features)).squeeze(-1)


class ParaphraseTask(Task):
    name = "para"
    files = {"train": "quora-train.csv", "dev": "quora-dev.csv"}
    text_columns = ("sentence1", "sentence2")
    label_column = "is_duplicate"
    primary_metric = "accuracy"
    hub = HubSource("nyu-mll/glue", "qqp", {"train": "train", "dev": "validation"},
                    ("question1", "question2"), "label")

    def parse_label(self, raw: str) -> float:
        value = float(raw)
        if value not in (0.0, 1.0):
            raise ValueError(f"is_duplicate must be 0 or 1, got {raw!r}")
        return value

    def build_head(self, hidden_size: int, config: ModelConfig) -> nn.Module:
        return ParaphraseHead(hidden_size, config.dropout, config.para_features,
                              cross=config.para_encoder == "cross")

    def segments(self, config: ModelConfig) -> int:
        return 1 if config.para_encoder == "cross" else 2

    def loss(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(upcast(outputs), labels.to(upcast(outputs).dtype))

    def distill_loss(self, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """KL(teacher || student) of the Bernoulli distributions of the logits at ``temperature``, times T^2."""
        s, t = upcast(student) / temperature, upcast(teacher) / temperature
        p = torch.sigmoid(t)
        kl = p * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p) * (F.logsigmoid(-t) - F.logsigmoid(-s))
        return kl.mean() * temperature ** 2

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        return (outputs > 0).long()

    def metrics(self, predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        return {"accuracy": accuracy(predictions, labels), "f1": binary_f1(predictions, labels)}
