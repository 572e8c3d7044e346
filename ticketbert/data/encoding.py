"""A task's examples tokenised, with the fixed train subsample evaluated every epoch."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ticketbert.config import DataConfig
from ticketbert.data.batching import EncodedSplit, encode
from ticketbert.data.sources import RawTaskData
from ticketbert.tasks.task import Task


@dataclass
class TaskData:
    """Encoded splits of one task: train, dev and the fixed train subsample for evaluation."""

    task: Task
    train: EncodedSplit
    dev: EncodedSplit
    train_eval: EncodedSplit


def encode_task(raw: RawTaskData, tokenizer, data: DataConfig, seed: int = 0) -> TaskData:
    """Tokenise a task's splits and draw its seeded train-evaluation subsample."""
    segments = raw.task.segments()
    train = encode(raw.train, tokenizer, segments, data.max_length)
    dev = encode(raw.dev, tokenizer, segments, data.max_length)
    size = min(data.train_eval_examples, len(train))
    subsample = sorted(random.Random(seed + 1).sample(range(len(train)), size))
    return TaskData(raw.task, train, dev, train.subset(subsample))
