"""DistilBERT: ``transformer.layer[i]`` with the output projection inside the attention module
(``attention.out_lin``), FFN ``ffn.lin1`` / ``ffn.lin2``, heads counted in ``n_heads``."""

from __future__ import annotations

from torch import nn

from ticketbert.models.families.base import EmptyAttention, EncoderFamily, Projection


class DistilBertFamily(EncoderFamily):
    name = "distilbert"
    model_types = ("distilbert",)
    layers_path = "transformer.layer"
    head_inputs = (Projection("attention.q_lin", 0), Projection("attention.k_lin", 0),
                   Projection("attention.v_lin", 0))
    head_output = Projection("attention.out_lin", 1)
    ffn_inputs = (Projection("ffn.lin1", 0),)
    ffn_output = Projection("ffn.lin2", 1)

    def keep_layers(self, base: nn.Module, kept: list[int]) -> None:
        super().keep_layers(base, kept)  # config.num_hidden_layers maps onto n_layers
        base.transformer.n_layers = len(kept)

    def num_heads(self, layer: nn.Module) -> int:
        return layer.attention.n_heads

    def head_size(self, layer: nn.Module) -> int:
        return layer.attention.attention_head_size

    def set_num_heads(self, layer: nn.Module, count: int) -> None:
        attention = layer.attention
        if count == 0:  # out_lin lives inside the attention: its bias is what remains
            layer.attention = EmptyAttention({"out_lin": attention.out_lin}, n_heads=0,
                                             attention_head_size=attention.attention_head_size)
            return
        attention.n_heads = count
