"""What a pruning method is, declared once and torch-free: its name, the units it removes, the
criteria it ranks them by, the options and modes it takes, and its largest-sparsity rule.

The run config's checks, ``prune``, ``EarlyBirdPruner``, posthoc and the sweep read these
descriptions; nothing else compares method names. The built-in methods are declared in
``ticketbert.pruning.methods.catalog``; a method of your own is one file that calls
``register(MethodDescription(...), implementation=YourMethod)`` (imported through the run
config's ``plugins`` list, so every process of a sweep knows it).

Importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

DENSE = "none"  # the run config's "no pruning" (a dense baseline), not a method
MODES = ("posthoc", "early_bird", "imp")
SCOPES = ("global", "layer", "row")
# keyword options a method may take; the run config's prune.<option> fields of the same names
OPTIONS = frozenset({"repair", "steps", "normalize", "budget", "round_to", "include", "pattern", "block_size",
                     "damping"})
# the options that are also run-config fields (prune.<name>): set for a method that does not take them, they are errors
CONFIG_OPTIONS = ("repair", "budget", "round_to", "pattern", "block_size", "damping")
LIMITS = ("all", "units", "all_but_one_unit")
# criteria computed from unit-gate gradients: an early-bird pruner can draw them from training's own backward
GRADIENT_CRITERIA = ("taylor", "fisher", "fisher_batch")
# criteria an early-bird pruner (or an IMP round) can draw from training's own passes: the gradient
# criteria from its backward, wanda's activation norms from its forward
TRAINING_CRITERIA = (*GRADIENT_CRITERIA, "activation")


@dataclass(frozen=True)
class MethodDescription:
    """One pruning method, as every part of ticketbert sees it.

    ``units``: the unit kinds it removes physically (``()`` for unstructured weight masks);
    ``limit``: its largest reachable sparsity, ``"all"`` (any sparsity below 1), ``"units"``
    (the share of the prunable weights its units hold) or ``"all_but_one_unit"`` (``layers``:
    one must stay); ``reuses_scores``: False for sequential methods whose scores depend on the
    level (they are rerun per level instead of scored once and planned many times);
    ``implementation``: ``"module:attribute"`` of its ``Method`` object, imported on first use.
    """

    name: str
    summary: str
    units: tuple[str, ...]
    criteria: tuple[str, ...]
    default_criterion: str
    implementation: str
    options: frozenset[str] = frozenset()
    modes: tuple[str, ...] = ("posthoc",)
    scopes: tuple[str, ...] = ("global", "layer")
    default_scope: str = "global"
    limit: str = "all"
    reuses_scores: bool = True
    modes_reason: str = ""  # why the modes not listed do not fit it (said in the error)

    def __post_init__(self) -> None:
        if self.name == DENSE or not self.name:
            raise ValueError(f"a pruning method cannot be named {self.name!r}")
        if self.default_criterion not in self.criteria:
            raise ValueError(f"method {self.name!r}: default criterion {self.default_criterion!r} is not among its "
                             f"criteria {self.criteria}")
        unknown = set(self.options) - OPTIONS
        if unknown:
            raise ValueError(f"method {self.name!r}: unknown options {sorted(unknown)}; known: {sorted(OPTIONS)}")
        if set(self.modes) - set(MODES) or set(self.scopes) - set(SCOPES) or self.limit not in LIMITS:
            raise ValueError(f"method {self.name!r}: modes must be among {MODES}, scopes among {SCOPES}, "
                             f"limit one of {LIMITS}")
        if self.default_scope not in self.scopes:
            raise ValueError(f"method {self.name!r}: default scope {self.default_scope!r} not in {self.scopes}")

    def takes(self, option: str) -> bool:
        """Whether ``option`` (one of ``OPTIONS``) applies to this method."""
        return option in self.options

    def check_criterion(self, criterion: str | None) -> str:
        """``criterion`` (default: the method's usual one) if the method ranks by it; else one line saying which."""
        chosen = criterion or self.default_criterion
        if chosen not in self.criteria:
            raise ValueError(f"method {self.name!r} ranks units by {either(self.criteria)}; got criterion {chosen!r}")
        return chosen

    def check_mode(self, mode: str) -> None:
        if mode not in self.modes:
            reason = f": {self.modes_reason}" if self.modes_reason else ""
            raise ValueError(f"method {self.name!r} runs in mode {either(self.modes)}, not {mode!r}{reason}")

    def check_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise ValueError(f"method {self.name!r} plans with scope {either(self.scopes)}, not {scope!r}")

    def check_options(self, **values: Any) -> None:
        """Each option given (not None) must be one this method takes."""
        for option, value in values.items():
            if value is not None and not self.takes(option):
                users = [d.name for d in descriptions() if d.takes(option)]
                raise ValueError(f"{option} applies to method {either(users) or 'none'}, not {self.name!r}")

    def method(self) -> Any:
        """The implementation (a ``ticketbert.pruning.methods.base.Method``); imports torch."""
        if self.name not in _IMPLEMENTATIONS:
            module, _, attribute = self.implementation.partition(":")
            _IMPLEMENTATIONS[self.name] = getattr(import_module(module), attribute)
        return _IMPLEMENTATIONS[self.name]


def either(names: tuple[str, ...] | list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} or {names[-1]}"


_DESCRIPTIONS: dict[str, MethodDescription] = {}
_IMPLEMENTATIONS: dict[str, Any] = {}


def register(description: MethodDescription, implementation: Any = None) -> MethodDescription:
    """Add a method (``implementation``: its ``Method`` object, or None to import
    ``description.implementation`` on first use). Re-registering the same name replaces it."""
    _DESCRIPTIONS[description.name] = description
    _IMPLEMENTATIONS.pop(description.name, None)
    if implementation is not None:
        _IMPLEMENTATIONS[description.name] = implementation
    return description


def _load_catalog() -> None:
    import_module("ticketbert.pruning.methods.catalog")


def describe(name: str) -> MethodDescription:
    """The description of method ``name``; one line naming the known methods otherwise."""
    _load_catalog()
    if name not in _DESCRIPTIONS:
        raise ValueError(f"unknown pruning method {name!r}; known: {', '.join(sorted(_DESCRIPTIONS))}")
    return _DESCRIPTIONS[name]


def descriptions() -> list[MethodDescription]:
    """Every registered method, built-in ones first."""
    _load_catalog()
    return list(_DESCRIPTIONS.values())


def method_names() -> list[str]:
    return [d.name for d in descriptions()]


def is_dense(method: str) -> bool:
    """Whether a run config's ``prune.method`` means no pruning."""
    return method == DENSE


def import_plugins(modules: list[str]) -> None:
    """Import the modules that register methods of their own (the run config's ``plugins``)."""
    for module in modules:
        try:
            import_module(module)
        except ImportError as exc:
            raise ValueError(f"plugins: cannot import {module!r}: {exc}") from None

