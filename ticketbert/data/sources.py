"""Reading a task's examples from its source, and the fingerprint of what was read."""

from __future__ import annotations

import hashlib
import random
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ticketbert.config import DataConfig
from ticketbert.data.examples import DataError, Example
from ticketbert.data.location import DataLocation, resolve_source
from ticketbert.data.synthetic import synthetic_split
from ticketbert.data.task_rows import Cells, read_cells, split_file, to_examples, uses_dataset, uses_synthetic
from ticketbert.tasks.definition import TaskDefinition
from ticketbert.tasks.labels import LabelCodec, declared_codec, inferred_codec, label_key
from ticketbert.tasks.task import Task

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


def _held_out_dev(name: str, train: list[Cells], fraction: float, seed: int) -> tuple[list[Cells], list[Cells]]:
    count = max(1, round(fraction * len(train)))
    if count >= len(train):
        raise DataError(f"task {name}: {len(train)} train row(s) are too few to hold out a dev split")
    chosen = set(random.Random(f"{name}/dev/{seed}").sample(range(len(train)), count))
    warnings.warn(f"task {name}: no dev split declared: {count} of {len(train)} train rows held out as dev "
                  f"(dev_fraction {fraction:g}, seed {seed})", stacklevel=3)
    return [c for i, c in enumerate(train) if i not in chosen], [train[i] for i in sorted(chosen)]


def _codec(name: str, definition: TaskDefinition, train: list[Cells], dev: list[Cells]) -> LabelCodec:
    codec = declared_codec(definition)
    if codec is not None:
        return codec
    codec = inferred_codec(cell.label for cell in train)
    if len(codec.names) < 2:
        raise DataError(f"task {name}: train has a single label {list(codec.names)}; a classification needs two or more")
    known = set(codec.names)
    for cell in dev:
        if label_key(cell.label) not in known:
            raise DataError(f"{cell.where}: column {definition.label}: dev label {cell.label!r} never appears in "
                            f"train (labels inferred from train: {list(codec.names)}) (task {name})")
    warnings.warn(f"task {name}: labels inferred from train: {list(codec.names)} (ids 0..{len(codec.names) - 1}); "
                  f"declare labels: to fix their order", stacklevel=3)
    return codec


def read_task(config: DataConfig, name: str, definition: TaskDefinition, seed: int = 0) -> RawTaskData:
    """Train and dev examples of task ``name`` from its source (caps applied), and the task
    resolved with its labels (declared, or inferred from train)."""
    location = resolve_source(config)
    if uses_synthetic(definition, location):
        task = Task(name, definition, declared_codec(definition))
        splits = {split: synthetic_split(definition.synthetic, split, config.synthetic_examples, seed)
                  for split in ("train", "dev")}
    else:
        train = read_cells(name, definition, "train", location)
        dev = read_cells(name, definition, "dev", location)
        if dev is None:
            train, dev = _held_out_dev(name, train, definition.dev_fraction, seed)
        task = Task(name, definition, _codec(name, definition, train, dev))
        splits = {split: to_examples(cells, task.parse_label, name, definition.label)
                  for split, cells in (("train", train), ("dev", dev))}
    for split in ("train", "dev"):
        limit = config.max_train_examples if split == "train" else config.max_dev_examples
        splits[split] = _cap(splits[split], limit, seed)
    if config.swap_pairs and len(definition.text) == 2:
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


def _task_rows_fingerprint(name: str, definition: TaskDefinition, config: DataConfig, location: DataLocation) -> str:
    if uses_synthetic(definition, location):
        return f"synthetic:{definition.synthetic}/{config.synthetic_examples}"
    if uses_dataset(definition, location):
        source = definition.dataset
        return f"dataset:{source.path}/{source.name}/{sorted(source.splits.items())}/{sorted(source.columns.items())}"
    parts = []
    for split in ("train", "dev"):
        path = split_file(definition, split, location)
        if path is not None:
            if not path.is_file():
                raise DataError(f"{path}: file not found (task {name}, split {split})")
            parts.append(f"{path.name}={file_sha256(path)}")
    return ",".join(parts)


def data_fingerprint(config: DataConfig, definitions: Mapping[str, TaskDefinition]) -> str:
    """``<source>:<hash>`` of the data a run reads: per task, the sha256 of its files (or its
    dataset's name and splits, or the generator's settings) and the hash of its definition.
    Two runs over different data or task definitions never share a fingerprint."""
    location = resolve_source(config)
    parts = [f"{name}={definitions[name].digest()}:{_task_rows_fingerprint(name, definitions[name], config, location)}"
             for name in sorted(definitions)]
    return f"{location.source}:{hashlib.sha256(';'.join(parts).encode()).hexdigest()[:12]}"
