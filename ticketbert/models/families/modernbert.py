"""ModernBERT: ``layers[i]`` (not under ``encoder.``) with fused Q/K/V (``attn.Wqkv``, three
blocks), a gated FFN (``mlp.Wi`` stacks the input and gate halves), rotary positions and
global or local (sliding-window) attention per layer.

A layer's attention type lives on the layer (``attention_type``, and the module's
``sliding_window``) and in ``config.layer_types``, which rebuilds the layers and keys the rotary
embeddings: removing layers updates it so the saved model reloads with the same types. The
first layer's ``attn_norm`` is an Identity (the embeddings are normed already); which layers
norm their attention input is recorded, so that a model whose first layer was removed
reloads with its new first layer's LayerNorm.
"""

from __future__ import annotations

from torch import nn

from ticketbert.models.families.base import EmptyAttention, EncoderFamily, Projection

NORMED = "attn_norm"  # structure key: per layer, whether its attention input is LayerNormed


class ModernBertFamily(EncoderFamily):
    name = "modernbert"
    model_types = ("modernbert",)
    layers_path = "layers"
    head_inputs = (Projection("attn.Wqkv", 0, blocks=3),)
    head_output = Projection("attn.Wo", 1)
    ffn_inputs = (Projection("mlp.Wi", 0, blocks=2),)
    ffn_output = Projection("mlp.Wo", 1)

    def keep_layers(self, base: nn.Module, kept: list[int]) -> None:
        super().keep_layers(base, kept)
        base.config.layer_types = [layer.attention_type for layer in self.layers(base)]

    def num_heads(self, layer: nn.Module) -> int:
        attention = layer.attn
        if isinstance(attention, EmptyAttention):
            return 0
        return attention.Wqkv.out_features // (3 * attention.head_dim)  # the forward splits by head_dim

    def head_size(self, layer: nn.Module) -> int:
        return layer.attn.head_dim

    def set_num_heads(self, layer: nn.Module, count: int) -> None:
        if count == 0:  # Wo and its dropout live inside the attention: Wo's bias (if any) remains
            attention = layer.attn
            layer.attn = EmptyAttention({"Wo": attention.Wo, "out_drop": attention.out_drop},
                                        head_dim=attention.head_dim)

    def attention_span(self, layer: nn.Module, seq_len: int) -> float:
        """Mean keys per query: all of them, or within ``config.sliding_window`` (half the
        local window) either side in a local layer."""
        if layer.attention_type != "sliding_attention":
            return seq_len
        reach = min(layer.config.sliding_window, seq_len - 1)
        return (seq_len + 2 * (reach * seq_len - reach * (reach + 1) // 2)) / seq_len

    def structure_extras(self, base: nn.Module) -> dict:
        return {NORMED: [not isinstance(layer.attn_norm, nn.Identity) for layer in self.layers(base)]}

    def apply_extras(self, base: nn.Module, structure: dict) -> None:
        config = base.config
        for layer, normed in zip(self.layers(base), structure.get(NORMED, [])):
            if normed and isinstance(layer.attn_norm, nn.Identity):
                layer.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps, bias=config.norm_bias)
            elif not normed:
                layer.attn_norm = nn.Identity()
