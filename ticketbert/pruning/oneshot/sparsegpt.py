"""SparseGPT (Frantar & Alistarh 2023) on one matrix: prune and reconstruct.

Columns are processed left to right in blocks. With ``U`` the upper Cholesky factor of the
damped ``H^-1`` (``U[j, j]^2 = [(H_FF)^-1]_jj`` for F the columns from j on), a block's mask
is chosen by ``w^2 / U_jj^2`` (the OBS saliency) from the current weights (per M-group, just
before it, under an N:M pattern), then each column j is set to its masked value ``q`` and the
error ``(w - q) / U_jj`` is spread over the row's not-yet-processed columns along ``U[j, j:]``
(the OBS update). Updates to later blocks are applied once per block (lazy batching), which
gives the same result as updating column by column.
"""

from __future__ import annotations

import torch

from ticketbert.pruning.nm_pattern import NMPattern
from ticketbert.pruning.oneshot.patterns import nm_keep, select


def inverse_factor(hessian: torch.Tensor, damping: float) -> torch.Tensor:
    """Upper Cholesky factor of the inverse of ``H`` plus ``damping x mean(diag H)`` on its
    diagonal; a feature never seen (zero diagonal) gets unit curvature."""
    h = hessian.detach().clone().to(torch.promote_types(hessian.dtype, torch.float32))
    diagonal = h.diagonal()
    diagonal[diagonal == 0] = 1.0
    diagonal.add_(damping * float(diagonal.mean()))
    factor, info = torch.linalg.cholesky_ex(h)
    if int(info):
        raise ValueError(f"sparsegpt: the damped Hessian is not positive definite; raise damping (got {damping})")
    return torch.linalg.cholesky(torch.cholesky_inverse(factor), upper=True)


@torch.no_grad()
def sparsegpt_prune(weight: torch.Tensor, hessian: torch.Tensor, sparsity: float, *, scope: str = "layer",
                    pattern: NMPattern | None = None, block_size: int = 128, damping: float = 0.01,
                    keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The pruned, reconstructed ``weight`` ([rows, cols]) and its keep-mask. The mask comes from
    ``keep`` when given, else from the saliency per block: ``scope`` ``layer`` (over the block's
    rows and columns, as the reference code) or ``row``, or N:M per group under ``pattern``."""
    if pattern is not None and block_size % pattern.m:
        raise ValueError(f"sparsegpt: block_size {block_size} is not a multiple of the pattern's M ({pattern.m})")
    w = weight.detach().clone().to(torch.promote_types(weight.dtype, torch.float32))
    cols = w.shape[1]
    u = inverse_factor(hessian, damping).to(device=w.device, dtype=w.dtype)
    kept = torch.ones_like(w, dtype=torch.bool)
    for start in range(0, cols, block_size):
        end = min(start + block_size, cols)
        block, factor = w[:, start:end], u[start:end, start:end]
        d = factor.diagonal()
        if keep is not None:
            kept[:, start:end] = keep[:, start:end]
        elif pattern is None:
            kept[:, start:end] = select(block.pow(2) / d.pow(2), sparsity, scope)
        errors = torch.zeros_like(block)
        for j in range(end - start):
            if pattern is not None and keep is None and j % pattern.m == 0:
                group = slice(start + j, start + j + pattern.m)
                kept[:, group] = nm_keep(block[:, j: j + pattern.m].pow(2) / d[j: j + pattern.m].pow(2), pattern)
            column = block[:, j]
            q = column * kept[:, start + j]
            errors[:, j] = (column - q) / d[j]
            block[:, j:] -= errors[:, j, None] * factor[j, j:][None, :]
            block[:, j] = q
        w[:, end:] -= errors @ u[start:end, end:]
    return w.to(weight.dtype), kept
