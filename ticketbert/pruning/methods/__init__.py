"""Pruning methods, looked up by name. Adding one is one file and one line here."""

from __future__ import annotations

from ticketbert.pruning.methods.base import Method, Plan, Scores
from ticketbert.pruning.methods.joint import HeadsAndFfn
from ticketbert.pruning.methods.magnitude import Magnitude
from ticketbert.pruning.methods.structured import Structured
from ticketbert.pruning.units import UNIT_KINDS

METHODS: dict[str, Method] = {m.name: m for m in (
    Magnitude(),
    Structured(UNIT_KINDS["heads"], default_criterion="taylor"),
    Structured(UNIT_KINDS["ffn"], default_criterion="taylor"),
    Structured(UNIT_KINDS["layers"], default_criterion="loss_increment"),
    HeadsAndFfn(),
)}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown pruning method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name]


__all__ = ["METHODS", "Method", "Plan", "Scores", "get_method"]
