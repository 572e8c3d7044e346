"""Early-bird tickets inside the Hugging Face ``Trainer``.

    pruner = ticketbert.EarlyBirdPruner("heads", 0.3, criterion="l1", model=model)
    trainer = Trainer(model=model, args=args, train_dataset=train)
    add_early_bird(trainer, pruner)          # or Trainer(..., callbacks=[EarlyBirdCallback(pruner)])
    trainer.train()                          # finds the ticket, prunes, trains the smaller model on
    trainer.save_model("out")                # ticketbert.load_pruned("out") reloads it

When the ticket is found the model is pruned in place and the Trainer's optimizer moves onto
the smaller parameters with its state cut alike; its learning-rate scheduler keeps running.
``search_lr``: the peak learning rate while the ticket is searched (the Trainer's schedule shape,
at ``search_lr / args.learning_rate`` of its height; back to the Trainer's own from the step after
pruning). Gradient criteria draw from the Trainer's own backward passes by default (gates on the
model from the start of training until the ticket is found or training ends; see
``EarlyBirdPruner``'s ``draws``).
Every mask distance (``early_bird/mask_distance``) and the ticket's figures
(``early_bird_step``, ``achieved_sparsity``, ``flops_per_token``, ...) go through the Trainer's
own logging, so ``report_to="mlflow"`` (or tensorboard, wandb) carries them.
"""

from __future__ import annotations

import warnings

from transformers import Trainer, TrainerCallback

from ticketbert.pruning.api import PruningReport
from ticketbert.pruning.early_bird import EarlyBirdPruner
from ticketbert.training.lr_scale import set_lr_scale


class EarlyBirdCallback(TrainerCallback):
    """Steps an ``EarlyBirdPruner`` after every optimizer step of a ``Trainer``; prunes when
    the ticket is found. Its metrics reach the Trainer's reporters when the callback runs before
    them (``add_early_bird``); added with ``callbacks=[...]`` it prunes all the same and its
    metrics land in ``trainer.state.log_history``."""

    def __init__(self, pruner: EarlyBirdPruner, *, search_lr: float | None = None):
        if not isinstance(pruner, EarlyBirdPruner):
            raise TypeError(f"EarlyBirdCallback needs a ticketbert.EarlyBirdPruner, got {type(pruner).__name__}")
        if search_lr is not None and search_lr <= 0:
            raise ValueError(f"search_lr must be > 0, got {search_lr}")
        self.pruner, self.search_lr = pruner, search_lr
        self.report: PruningReport | None = None
        self.pending: dict[str, float] = {}

    def on_train_begin(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs):
        self.pruner.check_model(model)
        if args.fp16 and self.pruner.draws == "training":
            raise ValueError("training draws sum the gate gradients of the training backward, which fp16's loss "
                             "scaler rescales from step to step: use bf16=True, or EarlyBirdPruner(draws='calibration')")
        if self.report is None:
            self.pruner.attach(model)
        if self.search_lr is not None:
            set_lr_scale(optimizer, lr_scheduler, 1.0 if self.report else self.search_lr / args.learning_rate)

    def on_step_end(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs):
        if self.report is not None:
            return control
        drawn = len(self.pruner.distances)
        found = self.pruner.step(model)
        if len(self.pruner.distances) > drawn:
            self.pending["early_bird/mask_distance"] = self.pruner.distances[-1]
            control.should_log = True
        if found:
            self.report = self.pruner.prune(model, optimizer=optimizer)
            if self.search_lr is not None:
                set_lr_scale(optimizer, lr_scheduler, 1.0)
            self.pending.update({"early_bird_step": float(self.pruner.found_at),
                                 "early_bird_converged": float(self.pruner.converged),
                                 "early_bird_scoring_flops": self.pruner.scoring_flops, **self.report.metrics()})
            control.should_log = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self.pruner.detach()
        if self.report is None:
            warnings.warn(f"early-bird: no ticket after {self.pruner.steps} steps (distances "
                          f"{[round(d, 3) for d in self.pruner.distances[-self.pruner.window:]]}, epsilon "
                          f"{self.pruner.epsilon}): the model was NOT pruned; call pruner.prune(model) to cut it "
                          f"with the last mask, or train longer / set max_steps", stacklevel=2)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.pending and logs is not None:
            logs.update(self.pending)
            if state.log_history:
                state.log_history[-1].update(self.pending)
            self.pending = {}


def add_early_bird(trainer: Trainer, pruner: EarlyBirdPruner, *, search_lr: float | None = None) -> EarlyBirdCallback:
    """Add an ``EarlyBirdCallback`` for ``pruner`` to ``trainer`` ahead of its other callbacks,
    so that the reporters of ``report_to`` log its mask distances and ticket figures. Should
    ``trainer.train()`` raise, ``pruner.detach()`` (or ``with pruner:``) takes the training
    draws' gates off the model."""
    callback = EarlyBirdCallback(pruner, search_lr=search_lr)
    trainer.callback_handler.callbacks.insert(0, callback)
    return callback
