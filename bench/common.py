"""Shared set-up of the benchmarks: the data asked for (and a record of it), the bundled
MiniLM, results files with their provenance."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ticketbert.config import RunConfig, load_config
from ticketbert.data import DATA_DIR_ENV, TaskData, resolve_source
from ticketbert.models import load_tokenizer
from ticketbert.run import encode_data, read_data
from ticketbert.provenance import DataRecord, announce, collect, data_record, write_results
from ticketbert.data.task_rows import split_file

RUNS = Path(__file__).resolve().parent / "runs"  # new results files land here unless --out is given


def results_path(name: str, out: Path | None) -> Path:
    """``out`` when given, else a new file ``bench/runs/<name>-<UTC time>-<pid>.json``."""
    if out is not None:
        return Path(out)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return RUNS / f"{name}-{stamp}-{os.getpid()}.json"


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` (the CS224N files) and ``--out`` (the results file), shared by every bench."""
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"CS224N data directory (default ${DATA_DIR_ENV}; without either: the bundled sample, "
                             "flagged in the output and the results file)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file to write (default: a new file under bench/runs/; "
                             "give a bench/results/ path to replace a committed file)")


def bench_config(tasks: list[str], data_dir: Path | None, overrides: list[str] = ()) -> RunConfig:
    """A run config over ``tasks`` reading ``data_dir`` ($TICKETBERT_DATA_DIR when None)."""
    directory = data_dir or (Path(os.environ[DATA_DIR_ENV]) if os.environ.get(DATA_DIR_ENV) else None)
    settings = [f"train.tasks=[{','.join(tasks)}]", *overrides]
    if directory is not None:
        settings.append(f"data.dir={directory}")
    return load_config(None, settings)


def record_data(config: RunConfig) -> DataRecord:
    """What ``config`` reads, with the sha256 of its files; printed, a substitution loudly."""
    location = resolve_source(config.data)
    source, directory = location
    requested = str(config.data.dir) if config.data.dir else None
    files = [split_file(config.task_definition(t), split, location) for t in config.train.tasks
             for split in ("train", "dev")] if source in ("csv", "sample") else []
    substituted = None
    if source == "sample":
        substituted = (f"no --data-dir or ${DATA_DIR_ENV}: the bundled sample (1,200 train / 400 dev examples "
                       "per task) instead of the full CS224N files")
    elif source == "synthetic":
        substituted = "synthetic data: its metrics mean nothing about language"
    record = data_record(requested, source, directory, files, substituted)
    announce(record)
    return record


def bench_data(tasks: list[str], data_dir: Path | None,
               overrides: list[str] = ()) -> tuple[dict[str, TaskData], Any, DataRecord]:
    """Encoded data of ``tasks`` from ``data_dir`` (see :func:`bench_config`) and its record."""
    config = bench_config(tasks, data_dir, overrides)
    record = record_data(config)
    tokenizer = load_tokenizer(config.model.encoder)
    return encode_data(config, read_data(config), tokenizer), tokenizer, record


@dataclass
class FineTuned:
    """A fine-tuned model with the run config, data record, encoded data and padding id of its task."""

    config: RunConfig
    record: DataRecord
    task: str
    data: dict[str, TaskData]
    pad_id: int
    model: Any


def load_fine_tuned(args: argparse.Namespace) -> FineTuned:
    """The model in ``args.model`` with the data of ``args.config`` (``args.data_dir`` and
    ``args.overrides`` applied; 200 train examples evaluated)."""
    from ticketbert.pruning import load_pruned

    data_setting = [f"data.dir={args.data_dir}"] if args.data_dir else []
    config = load_config(args.config, ["data.train_eval_examples=200", *data_setting, *args.overrides])
    record = record_data(config)
    tokenizer = load_tokenizer(config.model.encoder)
    data = encode_data(config, read_data(config), tokenizer)
    return FineTuned(config, record, config.train.tasks[0], data, tokenizer.pad_token_id, load_pruned(args.model).eval())


def save(name: str, out: Path | None, data: DataRecord, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with its provenance to ``out`` or a new file named after ``name``."""
    path = write_results(results_path(name, out), collect(data, torch.get_num_threads()), payload)
    print(f"results: {path}", flush=True)
    return path


def matmul_flops_per_second(device: torch.device, size: int = 2048, repeats: int = 10,
                            dtype: torch.dtype = torch.float32) -> float:
    """The machine's practical limit: FLOP/s of a large dense matmul in ``dtype``."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    for _ in range(2):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The bench's own arguments for its results file (the data and output paths are in its provenance)."""
    return {k: v for k, v in vars(args).items() if k not in ("data_dir", "out")}

