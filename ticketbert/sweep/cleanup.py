"""Disk: a finished trial keeps its final model and metrics, not its training checkpoints."""

from __future__ import annotations

from ray import tune

from ticketbert.training.checkpoint import remove_checkpoints


class CheckpointCleanup(tune.Callback):
    """Once a trial is complete (its final result received), delete the training checkpoints
    (weights and optimizer state of the last epoch) in its run folder; an interrupted or failed
    trial keeps them, so that a retry or ``--resume`` continues from its last epoch."""

    def __init__(self):
        self.freed_bytes = 0

    def on_trial_complete(self, iteration: int, trials, trial, **info) -> None:
        run_dir = (trial.last_result or {}).get("run_dir")
        if run_dir:
            self.freed_bytes += remove_checkpoints(run_dir)
