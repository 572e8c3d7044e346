"""Per-matrix one-shot solvers, looked up by name: what each reads from the calibration
inputs, its scopes, and how it turns a weight (and input statistics) into a keep-mask and,
for SparseGPT, an updated weight."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ticketbert.pruning.nm_pattern import NMPattern
from ticketbert.pruning.oneshot.patterns import select
from ticketbert.pruning.oneshot.sparsegpt import sparsegpt_prune
from ticketbert.pruning.oneshot.stats import InputStats


@dataclass(frozen=True)
class SolverOptions:
    """How far and in what shape to prune, and SparseGPT's block size and damping."""

    sparsity: float
    scope: str
    pattern: NMPattern | None = None
    block_size: int = 128
    damping: float = 0.01


@dataclass
class Solution:
    """A matrix's keep-mask, and its new values where the solver updates the kept weights."""

    keep: torch.Tensor
    weight: torch.Tensor | None = None


class Solver:
    """A one-shot method on one matrix. ``scores`` (magnitude, Wanda) lets a plan compare
    weights across rows, matrices or the whole model; SparseGPT chooses as it reconstructs."""

    name: str
    needs_data: bool = True
    needs_gram: bool = False
    scopes: tuple[str, ...] = ("row", "layer", "global")
    default_scope: str

    def scores(self, weight: torch.Tensor, stats: InputStats | None) -> torch.Tensor:
        raise NotImplementedError

    def solve(self, weight: torch.Tensor, stats: InputStats | None, options: SolverOptions) -> Solution:
        return Solution(select(self.scores(weight, stats), options.sparsity, options.scope, options.pattern))


class MagnitudeSolver(Solver):
    """|W|: no data; with a pattern, the N:M twin of global magnitude."""

    name = "magnitude"
    needs_data = False
    default_scope = "global"

    def scores(self, weight, stats):
        return weight.detach().abs().float()


class WandaSolver(Solver):
    """Wanda (Sun et al. 2023): |W_ij| x ||X_j||_2, compared within each output row by default."""

    name = "wanda"
    default_scope = "row"

    def scores(self, weight, stats):
        return wanda_scores(weight, stats.norms)


def wanda_scores(weight: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """|W_ij| x ||X_j||_2: Wanda's per-weight scores from the input features' norms."""
    return weight.detach().abs().float() * norms.to(weight.device)[None, :]


class SparseGPTSolver(Solver):
    """SparseGPT (Frantar & Alistarh 2023): OBS saliency per block, kept weights updated to
    reconstruct the layer's output; ``layer`` (per block over the matrix, the reference rule)
    by default, or ``row``."""

    name = "sparsegpt"
    needs_gram = True
    scopes = ("row", "layer")
    default_scope = "layer"

    def solve(self, weight, stats, options):
        updated, keep = sparsegpt_prune(weight, stats.hessian.to(weight.device), options.sparsity, scope=options.scope,
                                        pattern=options.pattern, block_size=options.block_size,
                                        damping=options.damping)
        return Solution(keep, updated)


SOLVERS: dict[str, Solver] = {s.name: s for s in (MagnitudeSolver(), WandaSolver(), SparseGPTSolver())}


def get_solver(name: str) -> Solver:
    if name not in SOLVERS:
        raise ValueError(f"unknown one-shot method {name!r}; known: {', '.join(SOLVERS)}")
    return SOLVERS[name]
