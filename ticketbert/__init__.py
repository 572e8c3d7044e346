"""ticketbert: lottery-ticket-aware fine-tuning and pruning of BERT-family models.

Public API (everything else is internal and may change):

- ``prune(model, method, sparsity, *, criterion=None, data=None, loss_fn=None, optimizer=None, ...)
  -> PruningReport``: any Hugging Face model wrapping a supported encoder, or (magnitude, wanda,
  sparsegpt) any module; ``pattern="2:4"`` for N:M sparsity
- ``score`` / ``plan`` / ``apply``: the three steps of ``prune``, to reuse scores across levels
- ``method_limit(model, method)``: the largest sparsity a method can reach on a model
- ``sweep_sparsity(model, data, levels, *, method, ...)``: post-hoc sweep from one dense model
- ``EarlyBirdPruner``: finds an early-bird ticket in any training loop
  (``ticketbert.integrations.transformers.EarlyBirdCallback`` for the Hugging Face Trainer)
- ``save_pruned(model, path)`` / ``load_pruned(path)``: pruned models as safetensors + config
- ``load_config`` / ``run_training``: what ``python -m ticketbert.train`` does
"""

from importlib import import_module
from typing import Any

_LAZY = {"RunConfig": "ticketbert.config", "load_config": "ticketbert.config",
         **{name: "ticketbert.pruning" for name in ("PruningReport", "apply", "load_pruned", "method_limit", "plan",
                                                    "prune", "save_pruned", "score")},
         "EarlyBirdPruner": "ticketbert.pruning.early_bird",
         "sweep_sparsity": "ticketbert.measure", "run_training": "ticketbert.run"}


def __getattr__(name: str) -> Any:
    """The API loads on first use, so that importing one light module (``ticketbert.config``)
    does not import torch, transformers or MLflow: command lines answer bad arguments fast."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ticketbert' has no attribute {name!r}")


__all__ = ["EarlyBirdPruner", "PruningReport", "RunConfig", "apply", "load_config", "load_pruned", "method_limit",
           "plan", "prune", "run_training", "save_pruned", "score", "sweep_sparsity"]
__version__ = "0.1.0"
