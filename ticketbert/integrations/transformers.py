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

The search's state goes into every checkpoint the Trainer writes (``early_bird.pt``). To resume,
build the model and pruner as before and pass the checkpoint to ``add_early_bird`` as well as to
``trainer.train``; a ticket found before the checkpoint is applied to the model first, so the
Trainer loads the pruned weights and optimizer state into the pruned shapes::

    add_early_bird(trainer, pruner, resume_from_checkpoint="out/checkpoint-40")
    trainer.train(resume_from_checkpoint="out/checkpoint-40")

The metrics (``early_bird/mask_distance`` at every draw, the ticket's figures once; the same
names as ticketbert's own loop, see ``ticketbert.pruning.early_bird_run``) go through the
Trainer's own logging, so ``report_to="mlflow"`` (or tensorboard, wandb) carries them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ticketbert.extras import require

require("trainer", "the Hugging Face Trainer integration (ticketbert.integrations.transformers)")
from transformers import Trainer, TrainerCallback  # noqa: E402
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint  # noqa: E402

from ticketbert.pruning.api import PruningReport  # noqa: E402
from ticketbert.pruning.early_bird import EarlyBirdPruner  # noqa: E402
from ticketbert.pruning.early_bird_run import DISTANCE_METRIC, EarlyBirdRun  # noqa: E402

STATE_FILE = "early_bird.pt"


class EarlyBirdCallback(TrainerCallback):
    """Steps an ``EarlyBirdPruner`` after every optimizer step of a ``Trainer`` (through an
    ``EarlyBirdRun``); prunes when the ticket is found. Its metrics reach the Trainer's reporters
    when the callback runs before them (``add_early_bird``); added with ``callbacks=[...]`` it
    prunes all the same and its metrics land in ``trainer.state.log_history``."""

    def __init__(self, pruner: EarlyBirdPruner, *, search_lr: float | None = None):
        if search_lr is not None and search_lr <= 0:
            raise ValueError(f"search_lr must be > 0, got {search_lr}")
        self.run = EarlyBirdRun(pruner)
        self.pruner, self.search_lr = pruner, search_lr
        self.pending: dict[str, float] = {}

    @property
    def report(self) -> PruningReport | None:
        return self.run.report

    def resume(self, model: torch.nn.Module, checkpoint: str | Path) -> None:
        """Load the search's state from a Trainer ``checkpoint`` folder and give ``model`` the
        shapes it had there (pruned if the ticket was found before it was written)."""
        path = Path(checkpoint) / STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no early-bird state in this checkpoint (was it written with "
                                    f"add_early_bird or EarlyBirdCallback?)")
        self.run.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.run.restore(model)

    def on_train_begin(self, args, state, control, model=None, optimizer=None, lr_scheduler=None, **kwargs):
        if self.search_lr is not None:
            self.run.search_lr_scale = self.search_lr / args.learning_rate
        self.run.begin(model, optimizer, lr_scheduler, loss_scaling=args.fp16)

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        outcome = self.run.after_step(model, optimizer, state.global_step, float(state.total_flos))
        if outcome.distances:
            self.pending[DISTANCE_METRIC] = list(outcome.distances.values())[-1]
            control.should_log = True
        if outcome.pruned:
            self.pending.update(self.run.found_metrics())
            control.should_log = True
        return control

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if folder.is_dir() and state.is_world_process_zero:
            torch.save(self.run.state_dict(), folder / STATE_FILE)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self.pruner.detach()
        if self.run.report is None:
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


def add_early_bird(trainer: Trainer, pruner: EarlyBirdPruner, *, search_lr: float | None = None,
                   resume_from_checkpoint: str | Path | bool | None = None) -> EarlyBirdCallback:
    """Add an ``EarlyBirdCallback`` for ``pruner`` to ``trainer`` ahead of its other callbacks,
    so that the reporters of ``report_to`` log its mask distances and ticket figures.

    ``resume_from_checkpoint`` (a checkpoint folder, or True for the last one in
    ``args.output_dir``): restore the search from it and reshape ``trainer.model`` as it was
    there; pass the same to ``trainer.train``. Should ``trainer.train()`` raise,
    ``pruner.detach()`` (or ``with pruner:``) takes the training draws' gates off the model."""
    callback = EarlyBirdCallback(pruner, search_lr=search_lr)
    if resume_from_checkpoint:
        checkpoint = resume_from_checkpoint
        if checkpoint is True:
            checkpoint = get_last_checkpoint(trainer.args.output_dir)
            if checkpoint is None:
                raise FileNotFoundError(f"{trainer.args.output_dir}: no checkpoint to resume from")
        callback.resume(trainer.model, checkpoint)
    trainer.callback_handler.callbacks.insert(0, callback)
    return callback
