"""What the solvers need to know about a Linear's inputs, accumulated over calibration tokens
(padding excluded): per-feature squared norms (Wanda) and ``H = 2 X X^T / n`` (SparseGPT)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def real_tokens(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The rows of ``x`` ([rows, tokens, features] or [tokens, features]) that are real tokens,
    as [tokens, features]: the attention mask's ones when it has ``x``'s leading shape."""
    if mask is not None and mask.shape == x.shape[:-1]:
        return x[mask.bool()]
    return x.reshape(-1, x.shape[-1])


@dataclass
class InputStats:
    """Running statistics of one Linear's inputs; ``hessian`` only when a solver asks for it."""

    squared_norms: torch.Tensor  # [in_features] sum over tokens of x_j^2
    gram: torch.Tensor | None = None  # [in_features, in_features] sum over tokens of x x^T
    tokens: int = 0

    @classmethod
    def empty(cls, features: int, gram: bool, device: torch.device | None = None) -> "InputStats":
        zeros = torch.zeros(features, dtype=torch.float32, device=device)
        return cls(zeros, torch.zeros(features, features, dtype=torch.float32, device=device) if gram else None)

    def add(self, x: torch.Tensor, mask: torch.Tensor | None) -> None:
        """Accumulate the real tokens of ``x``."""
        tokens = real_tokens(x.detach(), mask).float()
        self.squared_norms += tokens.pow(2).sum(0)
        if self.gram is not None:
            self.gram.addmm_(tokens.T, tokens)
        self.tokens += tokens.shape[0]

    @property
    def norms(self) -> torch.Tensor:
        """||X_j||_2 of every input feature over the calibration tokens."""
        return self.squared_norms.sqrt()

    @property
    def hessian(self) -> torch.Tensor:
        """``H = 2 X X^T / n``: the layer-wise reconstruction error's Hessian per output row."""
        if self.gram is None:
            raise ValueError("these statistics were accumulated without the Gram matrix")
        return 2.0 * self.gram / max(self.tokens, 1)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.squared_norms, self.gram) if t is not None)
