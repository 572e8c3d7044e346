"""The BERT layout: BERT (and MiniLM), RoBERTa, XLM-RoBERTa, ELECTRA and CamemBERT share it."""

from __future__ import annotations

from torch import nn

from ticketbert.models.families.base import EmptyAttention, EncoderFamily, Projection


class BertFamily(EncoderFamily):
    name = "bert"
    model_types = ("bert", "roberta", "xlm-roberta", "electra", "camembert")
    layers_path = "encoder.layer"
    head_inputs = (Projection("attention.self.query", 0), Projection("attention.self.key", 0),
                   Projection("attention.self.value", 0))
    head_output = Projection("attention.output.dense", 1)
    ffn_inputs = (Projection("intermediate.dense", 0),)
    ffn_output = Projection("output.dense", 1)

    def num_heads(self, layer: nn.Module) -> int:
        return layer.attention.self.num_attention_heads

    def head_size(self, layer: nn.Module) -> int:
        return layer.attention.self.attention_head_size

    def set_num_heads(self, layer: nn.Module, count: int) -> None:
        attention = layer.attention.self
        if count == 0:  # the output projection sits outside: LayerNorm(dense.bias + hidden_states) remains
            layer.attention.self = EmptyAttention(num_attention_heads=0, all_head_size=0,
                                                  attention_head_size=attention.attention_head_size)
            return
        attention.num_attention_heads = count
        attention.all_head_size = count * attention.attention_head_size
