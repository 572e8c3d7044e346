"""Evaluation of a model on encoded splits."""

from __future__ import annotations

import numpy as np
import torch

from ticketbert.data import EncodedSplit, TaskData, iterate_batches, length_grouped_batches
from ticketbert.tasks import Task
from ticketbert.training.device import autocast


@torch.no_grad()
def evaluate_split(model, task: Task, split: EncodedSplit, *, pad_id: int, batch_size: int,
                   device: torch.device, bf16: bool = False) -> dict[str, float]:
    """``task``'s metrics and mean loss of ``model`` on ``split``."""
    was_training = model.training
    model.eval()
    predictions, labels, loss_sum = [], [], 0.0
    for batch in iterate_batches(split, length_grouped_batches(split.lengths, batch_size, None), pad_id):
        batch = batch.to(device)
        with autocast(device, bf16):
            outputs = model(task.name, batch)
        loss_sum += float(task.loss(outputs, batch.labels)) * len(batch.labels)
        predictions.append(task.predict(outputs.float()).cpu())
        labels.append(batch.labels.cpu())
    model.train(was_training)
    metrics = task.metrics(torch.cat(predictions).numpy(), torch.cat(labels).numpy())
    metrics["loss"] = loss_sum / len(split)
    return metrics


def evaluate(model, data: dict[str, TaskData], *, pad_id: int, batch_size: int, device: torch.device,
             bf16: bool = False) -> dict[str, float]:
    """Dev and train-subsample metrics of every task, named as tracked.

    One task: ``dev/accuracy``. Several: ``dev/sst/accuracy`` ... In both, ``{split}/overall`` is
    the mean of the tasks' primary metrics (SST acc, para acc, STS Pearson: the reference's overall).
    """
    named: dict[str, float] = {}
    for prefix, attr in (("dev", "dev"), ("train", "train_eval")):
        primaries = []
        for name, task_data in data.items():
            metrics = evaluate_split(model, task_data.task, getattr(task_data, attr), pad_id=pad_id,
                                     batch_size=batch_size, device=device, bf16=bf16)
            primaries.append(metrics[task_data.task.primary_metric])
            scope = prefix if len(data) == 1 else f"{prefix}/{name}"
            named.update({f"{scope}/{key}": value for key, value in metrics.items()})
        named[f"{prefix}/overall"] = float(np.mean(primaries))
    return named
