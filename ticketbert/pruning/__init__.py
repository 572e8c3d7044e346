"""Pruning: method descriptions, scores, plans and their application (masks or physical
removal), early-bird mask search, optimizer-state slicing, and saving/reloading pruned models.

Names load on first use, so that the torch-free method descriptions
(``ticketbert.pruning.methods``) are read without importing torch."""

from importlib import import_module
from typing import Any

_LAZY = {
    **{name: "ticketbert.pruning.api" for name in ("PruningReport", "apply", "max_sparsity", "method_limit",
                                                   "needs_data", "plan", "prune", "score")},
    **{name: "ticketbert.pruning.methods.base" for name in ("JointPlan", "JointScores", "MaskPlan", "Plan", "Scores",
                                                            "UnitPlan", "UnitScores", "WeightScores")},
    **{name: "ticketbert.pruning.calibration" for name in ("Calibration", "as_calibration", "make_calibration")},
    "CRITERIA": "ticketbert.pruning.criteria",
    **{name: "ticketbert.pruning.io" for name in ("load_pruned", "save_pruned")},
    **{name: "ticketbert.pruning.masks" for name in ("attach_masks", "attached_masks", "bake_masks")},
    "slice_optimizer": "ticketbert.pruning.optim",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ticketbert.pruning' has no attribute {name!r}")


__all__ = sorted(_LAZY)
