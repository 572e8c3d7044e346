"""Reading a task's examples from its source, and the fingerprint of what was read."""

from __future__ import annotations

import hashlib
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ticketbert.config import DataConfig
from ticketbert.data.csv_source import read_csv_split
from ticketbert.data.examples import Example
from ticketbert.data.hub_source import read_hub_split
from ticketbert.data.location import resolve_source
from ticketbert.data.synthetic import synthetic_split
from ticketbert.tasks import Task, get_task

SYNTHETIC_WARNING = ("ticketbert: data.source=synthetic: SYNTHETIC data. Its metrics mean NOTHING about "
                     "language; they only show that the pipeline runs.")


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
        if source in ("csv", "sample"):
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
    """Warn loudly when the run uses synthetic data; True if it does."""
    if resolve_source(config).source != "synthetic":
        return False
    warnings.warn(SYNTHETIC_WARNING, stacklevel=2)
    return True


@lru_cache(maxsize=64)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (cached per path, size and modification time)."""
    stat = path.stat()
    return _file_sha256(path.resolve(), stat.st_size, stat.st_mtime_ns)


def data_fingerprint(config: DataConfig, tasks: Sequence[str]) -> str:
    """``<source>:<hash>`` of the data a run reads: the sha256 of every file of ``tasks`` (csv,
    sample), the hub datasets' names and splits (hub), or the generator's settings (synthetic).
    Two runs over different data never share a fingerprint."""
    source, directory = resolve_source(config)
    parts = []
    for name in sorted(tasks):
        task = get_task(name)
        if source in ("csv", "sample"):
            parts += [f"{task.files[s]}={file_sha256(directory / task.files[s])}" for s in ("train", "dev")]
        elif source == "hub":
            parts.append(f"{name}={task.hub.path}/{task.hub.name}/{sorted(task.hub.splits.items())}")
        else:
            parts.append(f"{name}=synthetic/{config.synthetic_examples}")
    return f"{source}:{hashlib.sha256(';'.join(parts).encode()).hexdigest()[:12]}"
