"""Calibration data for gradient and loss criteria: the user's batches and loss function.

Every data-driven criterion sees a ``Calibration``: a fixed list of batches (anything the
``loss_fn`` accepts: a dict of tensors for a Hugging Face model, a tuple, ticketbert's own
``(task, Batch)`` pairs) and ``loss_fn(model, batch) -> loss``. A Hugging Face model called
with labels needs no loss function: the default is ``model(**batch).loss``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


LossFn = Callable[[nn.Module, Any], torch.Tensor]
ForwardFn = Callable[[nn.Module, Any], Any]  # runs the model on a batch; inputs only


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor inside it (dicts, tuples, lists, objects with ``.to``) on ``device``."""
    if isinstance(batch, Mapping) and not hasattr(batch, "to"):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch.to(device) if hasattr(batch, "to") and not isinstance(batch, nn.Module) else batch


def hf_loss(model: nn.Module, batch: Any) -> torch.Tensor:
    """The default loss: ``model(**batch).loss`` of a Hugging Face model called with labels."""
    if not isinstance(batch, Mapping):
        raise TypeError(f"the default loss_fn calls model(**batch) and needs dict batches, got "
                        f"{type(batch).__name__}: pass loss_fn=lambda model, batch: ...")
    loss = getattr(model(**batch), "loss", None)
    if loss is None:
        raise ValueError("model(**batch) returned no loss: include 'labels' in the batches or pass loss_fn=")
    return loss


def is_batch_object(batch: Any) -> bool:
    """A batch object holding tensors as attributes (ticketbert's own ``Batch``)."""
    return not isinstance(batch, (Mapping, tuple, list, torch.Tensor)) and isinstance(getattr(batch, "input_ids", None),
                                                                                      torch.Tensor)


def _is_task_data(value: Any) -> bool:
    """ticketbert's encoded task data (``TaskData``: a ``train`` split that collates batches)."""
    return callable(getattr(getattr(value, "train", None), "collate", None))


def _tensors(batch: Any) -> list[torch.Tensor]:
    """The tensors inside a batch, in order."""
    if isinstance(batch, torch.Tensor):
        return [batch]
    if is_batch_object(batch):
        return [t for t in (batch.input_ids, getattr(batch, "attention_mask", None), getattr(batch, "labels", None))
                if isinstance(t, torch.Tensor)]
    items = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (tuple, list)) else []
    return [t for item in items for t in _tensors(item)]


def _find(batch: Any, key: str) -> torch.Tensor | None:
    if is_batch_object(batch):
        return getattr(batch, key, None)
    if isinstance(batch, Mapping):
        return batch.get(key)
    if isinstance(batch, (tuple, list)):
        return next((t for t in (_find(item, key) for item in batch) if t is not None), None)
    return None


def batch_examples(batch: Any) -> int:
    """Examples in a batch: its labels' length, else its input ids' rows, else its first tensor's."""
    for key in ("labels", "input_ids"):
        found = _find(batch, key)
        if isinstance(found, torch.Tensor) and found.ndim:
            return found.shape[0]
    shaped = [t for t in _tensors(batch) if t.ndim]
    return shaped[0].shape[0] if shaped else 1


def batch_attention_mask(batch: Any) -> torch.Tensor | None:
    """The batch's attention mask ([encoder rows, tokens]), if it has one."""
    mask = _find(batch, "attention_mask")
    return mask if isinstance(mask, torch.Tensor) else None


def batch_tokens(batch: Any) -> int:
    """Real tokens of a batch (its attention mask's sum, else its input ids' count; 0 if neither)."""
    mask = batch_attention_mask(batch)
    if mask is not None:
        return int(mask.sum())
    ids = _find(batch, "input_ids")
    return int(ids.numel()) if isinstance(ids, torch.Tensor) else 0


@dataclass
class Calibration:
    """A fixed list of batches and the loss every data-driven criterion measures on them."""

    batches: list[Any]
    loss_fn: LossFn = hf_loss
    forward_fn: ForwardFn | None = None  # activation-aware methods' forward (None: their default)

    def __post_init__(self) -> None:
        if not self.batches:
            raise ValueError("calibration data is empty: pass at least one batch")

    @property
    def examples(self) -> int:
        return sum(batch_examples(b) for b in self.batches)

    @property
    def tokens(self) -> int:
        return sum(batch_tokens(b) for b in self.batches)

    def batch_loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        device = next(model.parameters()).device
        return self.loss_fn(model, to_device(batch, device))

    def loss(self, model: nn.Module) -> float:
        """Mean loss of ``model`` over the calibration examples (eval mode, no grad)."""
        was_training = model.training
        model.eval()
        with torch.no_grad():
            total = sum(float(self.batch_loss(model, b)) * batch_examples(b) for b in self.batches)
        model.train(was_training)
        return total / self.examples


def task_loss(model: nn.Module, batch: tuple[str, Any]) -> torch.Tensor:
    """The loss of ticketbert's own ``(task, Batch)`` batches on a TicketBertModel."""
    task, inner = batch
    return model.task_loss(task, inner)


def make_calibration(data: Mapping[str, Any], examples: int = 256, *, pad_id: int = 0,
                     batch_size: int = 32, seed: int = 0) -> Calibration:
    """``examples`` seeded training examples of every ticketbert task, as ``(task, Batch)`` batches."""
    batches = []
    for name, task_data in data.items():
        chosen = random.Random(seed).sample(range(len(task_data.train)), min(examples, len(task_data.train)))
        for start in range(0, len(chosen), batch_size):
            batches.append((name, task_data.train.collate(chosen[start: start + batch_size], pad_id)))
    return Calibration(batches, task_loss)


def as_calibration(data: Any, loss_fn: LossFn | None = None, *, max_batches: int | None = None,
                   examples: int = 256, pad_id: int = 0, seed: int = 0,
                   forward_fn: ForwardFn | None = None) -> Calibration:
    """Calibration from what a user has: a Calibration, ticketbert's ``{task: TaskData}``, or
    any iterable of batches (a list, a DataLoader; the first ``max_batches`` are kept).
    ``loss_fn`` / ``forward_fn`` given replace the data's own."""
    if isinstance(data, Calibration):
        calibration = data
    elif isinstance(data, Mapping) and data and all(_is_task_data(v) for v in data.values()):
        calibration = make_calibration(dict(data), examples, pad_id=pad_id, seed=seed)
    elif isinstance(data, (Mapping, torch.Tensor, str)) or not isinstance(data, Iterable):
        raise TypeError(f"data must be an iterable of batches (a list or DataLoader), a Calibration or a "
                        f"dict of TaskData, got {type(data).__name__}")
    else:
        calibration = Calibration(list(itertools.islice(data, max_batches)))
    if loss_fn is None and forward_fn is None:
        return calibration
    return Calibration(calibration.batches, loss_fn or calibration.loss_fn, forward_fn or calibration.forward_fn)
