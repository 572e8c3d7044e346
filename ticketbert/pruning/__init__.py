"""Pruning: scores, plans and their application (masks or physical removal), early-bird
mask search, and saving/reloading pruned models."""

from ticketbert.pruning.api import METHODS, Plan, PruningReport, Scores, apply, max_sparsity, plan, prune, score
from ticketbert.pruning.criteria import CRITERIA, Calibration, make_calibration
from ticketbert.pruning.io import load_pruned, save_pruned
from ticketbert.pruning.masks import attach_masks, attached_masks, bake_masks

__all__ = ["CRITERIA", "METHODS", "Calibration", "Plan", "PruningReport", "Scores", "apply", "attach_masks",
           "attached_masks", "bake_masks", "load_pruned", "make_calibration", "max_sparsity", "plan", "prune",
           "save_pruned", "score"]
