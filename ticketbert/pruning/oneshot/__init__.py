"""One-shot activation-aware pruning: Wanda, SparseGPT and N:M patterns (magnitude too),
calibrated layer by layer on inputs only."""

from ticketbert.pruning.oneshot.loop import default_forward
from ticketbert.pruning.nm_pattern import NMPattern, parse_pattern
from ticketbert.pruning.oneshot.prune import OneShotResult, oneshot_prune, resolve_options
from ticketbert.pruning.oneshot.solvers import SOLVERS, SolverOptions, get_solver
from ticketbert.pruning.oneshot.sparsegpt import sparsegpt_prune
from ticketbert.pruning.oneshot.stats import InputStats

__all__ = ["SOLVERS", "InputStats", "NMPattern", "OneShotResult", "SolverOptions", "default_forward", "get_solver",
           "oneshot_prune", "parse_pattern", "resolve_options", "sparsegpt_prune"]
