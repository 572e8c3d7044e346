"""Training modes as compositions of phases over the one training loop."""

from __future__ import annotations

from pathlib import Path

from ticketbert.config import RunConfig
from ticketbert.data import TaskData
from ticketbert.models import TicketBertModel
from ticketbert.pruning.io import save_pruned
from ticketbert.tracking import MlflowLogger
from ticketbert.training.loop import fit


def run_dense(config: RunConfig, model: TicketBertModel, data: dict[str, TaskData], pad_id: int,
              logger: MlflowLogger | None, directory: Path):
    """Fine-tune densely; checkpoint per epoch; save the final model."""
    from ticketbert.train import RunResult

    trained = fit(model, data, config.train, pad_id=pad_id, logger=logger, checkpoint_dir=directory / "checkpoint")
    model_dir = save_pruned(model, directory / "model")
    return RunResult(trained.final, trained.history, model_dir=model_dir)


def run_mode(config: RunConfig, model: TicketBertModel, data: dict[str, TaskData], pad_id: int,
             logger: MlflowLogger | None, directory: Path):
    """Dispatch on ``config.prune``: dense, post-hoc, early-bird or IMP."""
    return run_dense(config, model, data, pad_id, logger, directory)
