"""DeBERTa-v2 and v3 (``model_type`` "deberta-v2"): the BERT layout with disentangled attention.

With relative attention and ``share_att_key=False`` (v2 style) each layer has its own
positional projections ``pos_key_proj`` (c2p) / ``pos_query_proj`` (p2c), sliced per head
like Q/K/V; with ``share_att_key=True`` (v3 style) the positional scores reuse Q/K. The
relative-position embeddings are shared by all layers and heads, so surgery leaves them alone.
Head counts, head size and the emptied attention are BERT's (same attribute names).
"""

from __future__ import annotations

from torch import nn

from ticketbert.models.families.base import Projection
from ticketbert.models.families.bert import BertFamily


class DebertaV2Family(BertFamily):
    name = "deberta-v2"
    model_types = ("deberta-v2",)
    head_inputs = (Projection("attention.self.query_proj", 0), Projection("attention.self.key_proj", 0),
                   Projection("attention.self.value_proj", 0),
                   Projection("attention.self.pos_key_proj", 0, optional=True),
                   Projection("attention.self.pos_query_proj", 0, optional=True))

    def keep_layers(self, base: nn.Module, kept: list[int]) -> None:
        if base.encoder.conv is not None and 0 not in kept:
            raise ValueError("this DeBERTa adds a convolution of the embeddings to layer 0's output "
                             "(conv_kernel_size > 0): layer 0 cannot be removed")
        super().keep_layers(base, kept)

    def attention_span(self, layer: nn.Module, seq_len: int) -> float:
        """Keys per query plus the disentangled terms: c2p scores each query and p2c each key
        against ``2 * pos_ebd_size`` relative positions (scores only, no values: half a key each)."""
        attention = layer.attention.self
        if not getattr(attention, "relative_attention", False):
            return seq_len
        terms = sum(term in attention.pos_att_type for term in ("c2p", "p2c"))
        return seq_len + terms * attention.pos_ebd_size
