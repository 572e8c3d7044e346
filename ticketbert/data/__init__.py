"""Task data: sources (CS224N CSV, hub, synthetic), tokenising and batching."""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

from ticketbert.config import DataConfig, ModelConfig
from ticketbert.data.batching import Batch, EncodedSplit, collate, encode, iterate_batches, length_grouped_batches
from ticketbert.data.csv_source import read_csv_split
from ticketbert.data.examples import DataError, Example
from ticketbert.data.hub_source import read_hub_split
from ticketbert.data.synthetic import synthetic_split
from ticketbert.tasks import Task

DATA_DIR_ENV = "TICKETBERT_DATA_DIR"
SYNTHETIC_WARNING = ("ticketbert: no data directory given (data.dir / $TICKETBERT_DATA_DIR): using the "
                     "SYNTHETIC fallback data. Its metrics mean NOTHING about language; they only show "
                     "that the pipeline runs.")


def resolve_source(config: DataConfig) -> tuple[str, Path | None]:
    """(source, directory) after applying ``auto`` and $TICKETBERT_DATA_DIR."""
    directory = config.dir or (Path(os.environ[DATA_DIR_ENV]) if os.environ.get(DATA_DIR_ENV) else None)
    source = config.source
    if source == "auto":
        source = "csv" if directory is not None else "synthetic"
    if source == "csv":
        if directory is None:
            raise DataError("data.source is csv but neither data.dir nor $TICKETBERT_DATA_DIR is set")
        if not directory.is_dir():
            raise DataError(f"{directory}: data directory not found")
    return source, directory


@dataclass
class RawTaskData:
    task: Task
    train: list[Example]
    dev: list[Example]


def _cap(examples: list[Example], limit: int | None, seed: int) -> list[Example]:
    if limit is None or limit >= len(examples):
        return examples
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def read_task(config: DataConfig, task: Task, seed: int = 0) -> RawTaskData:
    """Train and dev examples of ``task`` from the configured source (caps applied)."""
    source, directory = resolve_source(config)
    splits = {}
    for split in ("train", "dev"):
        if source == "csv":
            examples = read_csv_split(task, directory, split)
        elif source == "hub":
            examples = read_hub_split(task, split)
        else:
            examples = synthetic_split(task.name, split, config.synthetic_examples, seed)
        limit = config.max_train_examples if split == "train" else config.max_dev_examples
        splits[split] = _cap(examples, limit, seed)
    if config.swap_pairs and len(task.text_columns) == 2:
        splits["train"] = splits["train"] + [Example(e.texts[::-1], e.label) for e in splits["train"]]
    return RawTaskData(task, splits["train"], splits["dev"])


def warn_if_synthetic(config: DataConfig) -> bool:
    """Warn loudly when the run falls back to synthetic data; True if it does."""
    if resolve_source(config)[0] != "synthetic":
        return False
    warnings.warn(SYNTHETIC_WARNING, stacklevel=2)
    return True


@dataclass
class TaskData:
    """Encoded splits of one task: train, dev and the fixed train subsample for evaluation."""

    task: Task
    train: EncodedSplit
    dev: EncodedSplit
    train_eval: EncodedSplit


def encode_task(raw: RawTaskData, tokenizer, data: DataConfig, model: ModelConfig, seed: int = 0) -> TaskData:
    """Tokenise a task's splits and draw its seeded train-evaluation subsample."""
    segments = raw.task.segments(model)
    train = encode(raw.train, tokenizer, segments, data.max_length)
    dev = encode(raw.dev, tokenizer, segments, data.max_length)
    size = min(data.train_eval_examples, len(train))
    subsample = sorted(random.Random(seed + 1).sample(range(len(train)), size))
    return TaskData(raw.task, train, dev, train.subset(subsample))


__all__ = [
    "Batch", "DataError", "EncodedSplit", "Example", "RawTaskData", "TaskData", "collate", "encode",
    "encode_task", "iterate_batches", "length_grouped_batches", "read_csv_split", "read_hub_split",
    "read_task", "resolve_source", "synthetic_split", "warn_if_synthetic",
]
