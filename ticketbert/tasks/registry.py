"""Registries looked up by name: task kinds, heads, losses and metrics.

An entry names its implementation as ``"module:attribute"`` and is imported on first use, so
that declarations are checked without importing torch. Adding a head, loss or metric is one
implementation plus one ``add`` line in ``ticketbert.tasks.catalog``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One registered implementation: its name, where it lives, the task kinds it serves."""

    name: str
    ref: str
    kinds: frozenset[str]
    options: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """The implementation (imported on first call)."""
        module, _, attribute = self.ref.partition(":")
        return getattr(import_module(module), attribute)


class Registry:
    """Entries of one sort (``what``: 'head', 'loss', ...) by name."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, ref: str, *, kinds: tuple[str, ...], **options: Any) -> Entry:
        """Register ``ref`` ("module:attribute") as ``name`` for task ``kinds``."""
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is already registered")
        entry = Entry(name, ref, frozenset(kinds), options)
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> Entry:
        """The entry called ``name``; ValueError listing the known names otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.what} {name!r}; known: {', '.join(sorted(self._entries))}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)
