"""Early-bird tickets inside the Hugging Face ``Trainer``.

    pruner = ticketbert.EarlyBirdPruner("heads", 0.3, criterion="l1", model=model)
    trainer = Trainer(model=model, args=args, train_dataset=train)
    add_early_bird(trainer, pruner)          # or Trainer(..., callbacks=[EarlyBirdCallback(pruner)])
    trainer.train()                          # finds the ticket, prunes, trains the smaller model on
    trainer.save_model("out")                # ticketbert.load_pruned("out") reloads it

When the ticket is found the model is pruned in place and the Trainer's optimizer moves onto
the smaller parameters with its state cut alike; its learning-rate scheduler keeps running.
Every mask distance (``early_bird/mask_distance``) and the ticket's figures
(``early_bird_step``, ``achieved_sparsity``, ``flops_per_token``, ...) go through the Trainer's
own logging, so ``report_to="mlflow"`` (or tensorboard, wandb) carries them.
"""

from __future__ import annotations

from transformers import Trainer, TrainerCallback

from ticketbert.pruning.api import PruningReport
from ticketbert.pruning.early_bird import EarlyBirdPruner


class EarlyBirdCallback(TrainerCallback):
    """Steps an ``EarlyBirdPruner`` after every optimizer step of a ``Trainer``; prunes when
    the ticket is found. Its metrics reach the Trainer's reporters when the callback runs before
    them (``add_early_bird``); added with ``callbacks=[...]`` it prunes all the same and its
    metrics land in ``trainer.state.log_history``."""

    def __init__(self, pruner: EarlyBirdPruner):
        if not isinstance(pruner, EarlyBirdPruner):
            raise TypeError(f"EarlyBirdCallback needs a ticketbert.EarlyBirdPruner, got {type(pruner).__name__}")
        self.pruner = pruner
        self.report: PruningReport | None = None
        self.pending: dict[str, float] = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.pruner.check_model(model)

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        if self.report is not None:
            return control
        drawn = len(self.pruner.distances)
        found = self.pruner.step(model)
        if len(self.pruner.distances) > drawn:
            self.pending["early_bird/mask_distance"] = self.pruner.distances[-1]
            control.should_log = True
        if found:
            self.report = self.pruner.prune(model, optimizer=optimizer)
            self.pending.update({"early_bird_step": float(self.pruner.found_at),
                                 "early_bird_converged": float(self.pruner.converged),
                                 "early_bird_scoring_flops": self.pruner.scoring_flops, **self.report.metrics()})
            control.should_log = True
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.pending and logs is not None:
            logs.update(self.pending)
            if state.log_history:
                state.log_history[-1].update(self.pending)
            self.pending = {}


def add_early_bird(trainer: Trainer, pruner: EarlyBirdPruner) -> EarlyBirdCallback:
    """Add an ``EarlyBirdCallback`` for ``pruner`` to ``trainer`` ahead of its other callbacks,
    so that the reporters of ``report_to`` log its mask distances and ticket figures."""
    callback = EarlyBirdCallback(pruner)
    trainer.callback_handler.callbacks.insert(0, callback)
    return callback
