"""The ticketbert model: one shared encoder, one head per task."""

from __future__ import annotations

import torch
from torch import nn

from ticketbert.config import ModelConfig
from ticketbert.data.batching import Batch
from ticketbert.models.encoder import load_encoder, pool
from ticketbert.tasks import get_task


class TicketBertModel(nn.Module):
    """A BERT-family ``encoder`` with task ``heads``; single-task models have one head."""

    def __init__(self, encoder: nn.Module, heads: dict[str, nn.Module], config: ModelConfig | None = None):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict(heads)
        self.config = config or ModelConfig()

    @property
    def tasks(self) -> list[str]:
        return list(self.heads)

    def embed(self, batch: Batch) -> list[torch.Tensor]:
        """Pooled embedding of each segment of the batch (one encoder pass for all)."""
        hidden = self.encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                              token_type_ids=batch.token_type_ids).last_hidden_state
        pooled = pool(hidden, batch.attention_mask, self.config.pooling)
        return list(pooled.chunk(batch.segments))

    def forward(self, task: str, batch: Batch) -> torch.Tensor:
        """Raw outputs of ``task``'s head (logits or scores)."""
        return self.heads[task](self.embed(batch))

    def task_loss(self, task: str, batch: Batch) -> torch.Tensor:
        """``task``'s training loss on ``batch`` (what gradient pruning criteria measure)."""
        return get_task(task).loss(self(task, batch), batch.labels)


def build_model(config: ModelConfig, tasks: list[str]) -> TicketBertModel:
    """The configured encoder with a fresh head for each of ``tasks``."""
    encoder = load_encoder(config.encoder)
    hidden = encoder.config.hidden_size
    heads = {name: get_task(name).build_head(hidden, config) for name in tasks}
    return TicketBertModel(encoder, heads, config)
