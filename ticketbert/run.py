"""One training run as a library function: read and check the data, build the model, run the
configured mode (dense, post-hoc, early-bird, IMP) with MLflow tracking. ``python -m
ticketbert.train`` and the sweep's trainable call ``run_training``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ticketbert.config import RunConfig
from ticketbert.data import (RawTaskData, TaskData, data_fingerprint, encode_task, read_run_data,
                             resolve_source, run_definitions, warn_if_synthetic)
from ticketbert.models import load_tokenizer
from ticketbert.modes import run_mode
from ticketbert.pruning.methods import is_dense
from ticketbert.tasks.model import build_model
from ticketbert.tracking import MlflowLogger, Tracker, closing
from ticketbert.training.device import seed_everything, select_device
from ticketbert.training.loop import Logger


def config_digest(config: RunConfig) -> str:
    """Short stable hash of everything that defines a run's result: the resolved run config
    (tracking, progress display and the declarations of tasks it does not train aside) and the
    fingerprint of the data it reads (its tasks' definitions and file hashes, or the synthetic
    generator's settings). Runs over other data, task definitions or settings get other
    folders and other MLflow runs."""
    settings = config.model_dump(mode="json", exclude={"tracking": True, "tasks": True, "train": {"progress"}})
    blob = json.dumps({"config": settings, "data": data_fingerprint(config.data, run_definitions(config))},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def run_dir(config: RunConfig) -> Path:
    """Where a run's checkpoints and final model live: one folder per (name, config, data)."""
    return config.output_dir / f"{config.name}-{config_digest(config)}"


def run_tags(config: RunConfig) -> dict[str, Any]:
    """The standard tags of a run: task, mode, method, criterion, sparsity, pattern (N:M or
    "none"), seed, its tasks' primary metrics in words (``task_metric``: 'SST accuracy',
    'sst2 f1') and its data
    (source, fingerprint, ``synthetic_data``)."""
    pruned = not is_dense(config.prune.method)
    source = resolve_source(config.data).source
    definitions = run_definitions(config)
    return {
        "task": "+".join(config.train.tasks),
        "mode": config.prune.mode if pruned else "dense",
        "method": config.prune.method,
        "criterion": config.prune.criterion or "",
        "sparsity": config.prune.sparsity if pruned else 0.0,
        "pattern": (config.prune.pattern or "none") if pruned else "none",
        "seed": config.train.seed,
        "data_source": source,
        "data_fingerprint": data_fingerprint(config.data, definitions),
        "task_metric": "; ".join(d.metric_label(name) for name, d in definitions.items()),
        "synthetic_data": source == "synthetic",
    }


def read_data(config: RunConfig) -> list[RawTaskData]:
    """Read and check every task of the run (cheap: before any model or tokenizer is loaded)."""
    return read_run_data(config)


def encode_data(config: RunConfig, raws: list[RawTaskData], tokenizer) -> dict[str, TaskData]:
    """Tokenise the tasks read by ``read_data``."""
    return {raw.task.name: encode_task(raw, tokenizer, config.data, config.train.seed)
            for raw in raws}


def open_run(config: RunConfig, run_key: str | None, parent_run_id: str | None = None,
             tags: dict[str, Any] | None = None) -> MlflowLogger | None:
    """The run's MLflow logger (reopened if ``run_key`` exists), or None when tracking is off."""
    if not config.tracking.enabled:
        return None
    tracker = Tracker(config.tracking.uri, config.tracking.experiment)
    key = run_key or f"{config.name}:{config_digest(config)}"
    standard = run_tags(config)
    name = config.tracking.run_name or config.name
    return tracker.start(key, run_name=f"[synthetic] {name}" if standard["synthetic_data"] else name,
                         tags={**standard, **(tags or {})}, params=config.model_dump(mode="json"),
                         parent_run_id=parent_run_id)


@dataclass
class RunResult:
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    run_id: str | None = None
    model_dir: Path | None = None


class FanOut:
    """A Logger that forwards every epoch's metrics to several loggers."""

    def __init__(self, loggers: list[Logger]):
        self.loggers = loggers

    def log_dict(self, payload: dict[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log_dict(payload, step)


def run_training(config: RunConfig, *, run_key: str | None = None, parent_run_id: str | None = None,
                 tags: dict[str, Any] | None = None, reporters: Sequence[Logger] = (),
                 raws: list[RawTaskData] | None = None) -> RunResult:
    """Fine-tune (and prune) as ``config`` says; the function the CLI and the sweep call.
    ``reporters`` receive every epoch's metrics besides MLflow (e.g. Ray Tune); ``raws``: the
    tasks' rows when already read (``read_data``)."""
    synthetic = warn_if_synthetic(config.data)
    raws = read_data(config) if raws is None else raws
    tokenizer = load_tokenizer(config.model.encoder)
    data = encode_data(config, raws, tokenizer)
    device = select_device(config.train.device)
    if config.train.device == "auto":
        print(f"device: {device} (train.device auto)", flush=True)
    seed_everything(config.train.seed)
    model = build_model(config.model, [raw.task for raw in raws])
    logger = open_run(config, run_key, parent_run_id, {"synthetic_data": synthetic, **(tags or {})})
    with closing(logger):
        if logger is not None:
            logger.set_tags({"device": str(device)})
        sinks = FanOut([*([logger] if logger else []), *reporters])
        outcome = run_mode(config, model, data, tokenizer.pad_token_id, sinks, run_dir(config))
    return RunResult(outcome.metrics, outcome.history, logger.run_id if logger else None, outcome.model_dir)
