"""Task heads: pooled embeddings of an example's segments -> raw outputs (logits or scores).

Every head is built as ``Head(hidden_size, outputs, *, dropout, segments, features, scale)``
(``ticketbert.tasks.task.Task.build_head``) and uses what applies to it."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def upcast(tensor: torch.Tensor) -> torch.Tensor:
    """Half-precision outputs (bf16 autocast) to float32 for losses; float32/64 unchanged."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def pair_features(pooled: list[torch.Tensor], features: str) -> torch.Tensor:
    """One segment: its embedding. A bi-encoded pair: [u; v] or [u; v; |u-v|; u*v]."""
    if len(pooled) == 1:
        return pooled[0]
    u, v = pooled
    return torch.cat([u, v, (u - v).abs(), u * v] if features == "concat_diff_prod" else [u, v], dim=-1)


class LinearHead(nn.Module):
    """Dropout + linear over the (pair) features: ``outputs`` logits, or one squeezed value."""

    def __init__(self, hidden_size: int, outputs: int, *, dropout: float, segments: int = 1,
                 features: str = "concat_diff_prod", scale: float | None = None):
        super().__init__()
        width = hidden_size * (1 if segments == 1 else 4 if features == "concat_diff_prod" else 2)
        self.features, self.squeeze = features, outputs == 1
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, outputs)

    def forward(self, pooled: list[torch.Tensor]) -> torch.Tensor:
        out = self.classifier(self.dropout(pair_features(pooled, self.features)))
        return out.squeeze(-1) if self.squeeze else out


class CosineHead(nn.Module):
    """Dropout + linear projection of each text; their cosine similarity times ``scale`` (the
    range's upper end). The projection starts at the identity: the encoder's similarity geometry."""

    def __init__(self, hidden_size: int, outputs: int, *, dropout: float, segments: int = 2,
                 features: str = "concat", scale: float | None = None):
        super().__init__()
        self.scale = 1.0 if scale is None else scale
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(hidden_size, hidden_size)
        with torch.no_grad():
            self.projection.weight.copy_(torch.eye(hidden_size))
            self.projection.bias.zero_()

    def forward(self, pooled: list[torch.Tensor]) -> torch.Tensor:
        u, v = (self.projection(self.dropout(p)) for p in pooled)
        return self.scale * F.cosine_similarity(upcast(u), upcast(v), dim=-1)
