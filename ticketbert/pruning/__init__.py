"""Pruning: scores, plans and their application (masks or physical removal), early-bird
mask search, optimizer-state slicing, and saving/reloading pruned models."""

from ticketbert.pruning.api import (METHODS, Plan, PruningReport, Scores, apply, max_sparsity, method_limit,
                                    needs_data, plan, prune, score)
from ticketbert.pruning.calibration import Calibration, as_calibration, make_calibration
from ticketbert.pruning.criteria import CRITERIA
from ticketbert.pruning.io import load_pruned, save_pruned
from ticketbert.pruning.masks import attach_masks, attached_masks, bake_masks
from ticketbert.pruning.optim import slice_optimizer

__all__ = ["CRITERIA", "METHODS", "Calibration", "Plan", "PruningReport", "Scores", "apply", "as_calibration",
           "attach_masks", "attached_masks", "bake_masks", "load_pruned", "make_calibration", "max_sparsity",
           "method_limit", "needs_data", "plan", "prune", "save_pruned", "score", "slice_optimizer"]
