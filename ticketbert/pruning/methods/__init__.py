"""Pruning methods, looked up by name: each is a torch-free ``MethodDescription`` (what it is)
and a ``Method`` (what it does). Built-in methods are described in ``catalog``; see
``description.register`` for a method of your own."""

from __future__ import annotations

from typing import Any

from ticketbert.pruning.methods.description import (DENSE, MethodDescription, describe, descriptions, is_dense,
                                                    method_names, register)


def get_method(name: str) -> Any:
    """The implementation of method ``name`` (imports torch); one line naming the known ones otherwise."""
    return describe(name).method()


__all__ = ["DENSE", "MethodDescription", "describe", "descriptions", "get_method", "is_dense", "method_names",
           "register"]
