"""Encoder families, looked up by ``config.model_type``; the encoder is found inside whatever
model is handed over (a TicketBertModel, a Hugging Face task model, a user's wrapper)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from transformers import PreTrainedModel

from ticketbert.models.families.base import EmptyAttention, EncoderFamily, Projection, present
from ticketbert.models.families.bert import BertFamily
from ticketbert.models.families.deberta_v2 import DebertaV2Family
from ticketbert.models.families.distilbert import DistilBertFamily
from ticketbert.models.families.modernbert import ModernBertFamily

FAMILIES: dict[str, EncoderFamily] = {}


def register(family: EncoderFamily) -> EncoderFamily:
    """Make ``family`` the adapter of its ``model_types``."""
    for model_type in family.model_types:
        FAMILIES[model_type] = family
    return family


for _family in (BertFamily(), DistilBertFamily(), DebertaV2Family(), ModernBertFamily()):
    register(_family)


def supported() -> str:
    return ", ".join(sorted(FAMILIES))


@dataclass(frozen=True)
class Encoder:
    """The encoder inside a model (a Hugging Face base model) and its family's adapter."""

    module: nn.Module
    family: EncoderFamily

    @property
    def config(self):
        return self.module.config

    def layers(self) -> nn.ModuleList:
        return self.family.layers(self.module)


def base_model_of(model: nn.Module) -> PreTrainedModel | None:
    """The Hugging Face base model inside ``model``: the model itself, a task model's
    ``base_model``, or the first Hugging Face model among its submodules (``TicketBertModel.encoder``,
    a user's wrapper)."""
    for module in model.modules():
        if isinstance(module, PreTrainedModel):
            return module.base_model
    return None


def find_encoder(model: nn.Module, strict: bool = True) -> Encoder | None:
    """The supported encoder inside ``model``, or None if it holds no Hugging Face model. A
    Hugging Face model of an unsupported family is an error naming the supported ones
    (``strict``) or None (unstructured magnitude and FLOP counting treat it as any module)."""
    base = base_model_of(model)
    if base is None:
        return None
    model_type = getattr(base.config, "model_type", "")
    if model_type not in FAMILIES:
        if not strict:
            return None
        raise ValueError(f"{type(model).__name__}: model type {model_type!r} is not a supported encoder family "
                         f"(supported: {supported()})")
    return Encoder(base, FAMILIES[model_type])


def require_encoder(model: nn.Module, what: str) -> Encoder:
    """``find_encoder`` that fails with one line when ``model`` holds no encoder."""
    encoder = find_encoder(model)
    if encoder is None:
        raise TypeError(f"{what} needs a Hugging Face encoder ({supported()}) inside the model; "
                        f"{type(model).__name__} holds none (unstructured 'magnitude' works on any nn.Module)")
    return encoder


__all__ = ["FAMILIES", "EmptyAttention", "Encoder", "EncoderFamily", "Projection", "base_model_of", "find_encoder",
           "present", "register", "require_encoder", "supported"]
