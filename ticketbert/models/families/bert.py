"""The BERT layout: BERT (and MiniLM), RoBERTa, XLM-RoBERTa and ELECTRA share it."""

from __future__ import annotations

import torch
from torch import nn

from ticketbert.models.families.base import EncoderFamily, Projection


class EmptySelfAttention(nn.Module):
    """Self-attention with no heads left: a zero-width context, so the attention block's
    output is ``LayerNorm(dense.bias + hidden_states)``, as with every head masked."""

    num_attention_heads = 0
    all_head_size = 0

    def __init__(self, attention_head_size: int):
        super().__init__()
        self.attention_head_size = attention_head_size

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        return hidden_states.new_zeros(*hidden_states.shape[:-1], 0), None


class BertFamily(EncoderFamily):
    name = "bert"
    model_types = ("bert", "roberta", "xlm-roberta", "electra", "camembert")
    layers_path = "encoder.layer"
    head_inputs = (Projection("attention.self.query", 0), Projection("attention.self.key", 0),
                   Projection("attention.self.value", 0))
    head_output = Projection("attention.output.dense", 1)
    ffn_inputs = (Projection("intermediate.dense", 0),)
    ffn_output = Projection("output.dense", 1)
    empty_attention = EmptySelfAttention

    def num_heads(self, layer: nn.Module) -> int:
        return layer.attention.self.num_attention_heads

    def head_size(self, layer: nn.Module) -> int:
        return layer.attention.self.attention_head_size

    def set_num_heads(self, layer: nn.Module, count: int) -> None:
        attention = layer.attention.self
        if count == 0:
            layer.attention.self = self.empty_attention(attention.attention_head_size)
            return
        attention.num_attention_heads = count
        attention.all_head_size = count * attention.attention_head_size
