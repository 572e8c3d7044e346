"""End-to-end wall time of a sweep config's trials outside Ray and MLflow, on any device: dense
against early-bird training (``configs/early_bird_wall.yaml``).

Every grid point is trained from the run config the sweep gives that trial (the sweep's base with
its data source resolved, the point's overrides, ``resources.cpus_per_trial`` torch threads), with
tracking and progress bars off, in a fresh folder and a fresh process, and timed from the training
call to its return (data, tokenizer, model, the ticket search and its draws, pruning, the rest of
training, every evaluation and checkpoint: what the sweep's MLflow run covers, less Ray's
scheduling). ``--parallel N`` runs N trials at once on the one device, what
``resources.gpus_per_trial=1/N`` has Ray do.

    python -m bench.early_bird_wall --config configs/early_bird_wall.yaml --device cuda \\
        --data-dir <CS224N folder> grid.tasks=[sst] --out bench/runs/early_bird_wall_cuda.json

Overrides are the sweep's (``grid.tasks=[sst]``, ``train.epochs=1``: see ``python -m
ticketbert.sweep``); ``--check`` prints the trials' run configs and runs nothing. Post-hoc grids
with pruned points are refused: their trials start from a shared dense fine-tune (time those with
the sweep itself).
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ticketbert.cli import fail, print_resolved
from ticketbert.config import ConfigError, RunConfig, merge, validate
from ticketbert.data import DataError
from ticketbert.pruning.methods import is_dense
from ticketbert.sweep.config import SweepConfig, load_sweep_config
from ticketbert.sweep.records import GridPoint
from ticketbert.sweep.sweep import base_dict, trial_overrides

DEFAULT_CONFIG = Path("configs/early_bird_wall.yaml")


def trial_configs(config: SweepConfig, device: str, output_dir: Path) -> list[tuple[GridPoint, RunConfig]]:
    """(grid point, run config) of every trial, as the sweep's trainable builds them (base, then
    the point's overrides), with tracking and progress bars off and ``device``."""
    if config.grid.mode == "posthoc" and not all(is_dense(m) for m in config.grid.methods):
        raise ConfigError("a post-hoc grid with pruned points: its trials share a dense fine-tune; "
                          "time it with python -m ticketbert.sweep")
    base = base_dict(config, None)
    trials = []
    for point in config.trials():
        overrides = trial_overrides(point, config, {}, output_dir)
        raw = merge(merge(base, overrides), {"tracking": {"enabled": False},
                                             "train": {"device": device, "progress": False}})
        trials.append((point, validate(RunConfig, raw, f"trial {overrides['name']}")))
    return trials


def run_trial(raw: dict[str, Any], threads: int) -> dict[str, Any]:
    """Train one trial (a run config as JSON) with ``threads`` torch threads; its wall seconds,
    peak device memory and final metrics. Imports stay outside the timed part."""
    import torch

    from ticketbert.run import run_training

    torch.set_num_threads(threads)
    config = validate(RunConfig, raw, f"trial {raw.get('name')}")
    started = time.perf_counter()
    result = run_training(config)
    if config.train.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    memory = torch.cuda.max_memory_allocated() / 2**30 if config.train.device.startswith("cuda") else None
    return {"seconds": seconds, "max_memory_gib": memory,
            "metrics": {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}}


def run_all(trials: list[tuple[GridPoint, RunConfig]], threads: int, parallel: int) -> tuple[list[dict], float]:
    """Every trial in its own spawned process, ``parallel`` at a time; their results and the wall
    seconds of all of them."""
    context = multiprocessing.get_context("spawn")
    jobs = [(config.model_dump(mode="json"), threads) for _, config in trials]
    started = time.perf_counter()
    with context.Pool(processes=parallel, maxtasksperchild=1) as pool:
        results = pool.starmap(run_trial, jobs, chunksize=1)
    return results, time.perf_counter() - started


def row(point: GridPoint, result: dict[str, Any]) -> dict[str, Any]:
    metrics = result["metrics"]
    flops = metrics.get("total_train_flops", metrics.get("train_flops"))  # early-bird: with its scoring
    return {"task": point.task, "method": point.method, "criterion": point.criterion,
            "sparsity": point.sparsity, "seed": point.seed, "seconds": result["seconds"],
            "minutes": result["seconds"] / 60, "max_memory_gib": result["max_memory_gib"],
            "dev": {k.removeprefix("dev/"): v for k, v in metrics.items() if k.startswith("dev/")},
            "train_tflop": flops / 1e12 if flops is not None else None,
            "early_bird_step": metrics.get("early_bird_step"), "metrics": metrics}


def main(argv: list[str] | None = None) -> int:
    """Time the trials of ``--config`` (or print them with ``--check``); see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.early_bird_wall", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"sweep YAML (default {DEFAULT_CONFIG})")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda or cuda:N")
    parser.add_argument("--parallel", type=int, default=1, help="trials at once on the device (default 1)")
    parser.add_argument("--check", action="store_true", help="print the trials' run configs; run nothing")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="CS224N data directory (default: the sweep's data.dir or $TICKETBERT_DATA_DIR; "
                             "without either: the bundled sample, flagged in the output and the results file)")
    parser.add_argument("--out", type=Path, default=None, help="results file (default: a new file under bench/runs/)")
    parser.add_argument("overrides", nargs="*", help="the sweep's dotted.key=value overrides, e.g. grid.tasks=[sst]")
    args = parser.parse_args(argv)
    if args.parallel < 1:
        return fail(ValueError(f"--parallel must be at least 1 (got {args.parallel})"))
    overrides = [*args.overrides, *([f"data.dir={args.data_dir.resolve()}"] if args.data_dir else [])]
    output_dir = Path(tempfile.mkdtemp(prefix="early_bird_wall-"))
    try:
        from ticketbert.checks import check_run

        config = load_sweep_config(args.config, overrides)
        trials = trial_configs(config, args.device, output_dir)
        for _, trial in trials:
            check_run(trial)
        if args.check:
            print_resolved(f"{len(trials)} trials of {config.name}",
                           {t.name: t.model_dump(mode="json", exclude={"tasks"}) for _, t in trials})
            return 0
        return measure(args, config, trials)
    except (ConfigError, DataError, ValueError) as exc:
        return fail(exc)
    finally:
        shutil.rmtree(output_dir, ignore_errors=True)


def measure(args: argparse.Namespace, config: SweepConfig, trials: list[tuple[GridPoint, RunConfig]]) -> int:
    """Run the trials and write the results file."""
    from bench.common import record_data, results_path, settings
    from ticketbert.provenance import collect, write_results

    threads = max(1, int(config.resources.cpus_per_trial))
    first = trials[0][1]
    record = record_data(first.model_copy(update={"train": first.train.model_copy(update={"tasks": config.grid.tasks})}))
    print(f"{len(trials)} trials of {config.name} on {args.device}, {args.parallel} at a time, "
          f"{threads} torch threads each", flush=True)
    results, wall = run_all(trials, threads, args.parallel)
    rows = [row(point, result) for (point, _), result in zip(trials, results)]
    print(f"{'task':<6} {'method':<8} {'sparsity':>8} {'seconds':>8} {'TFLOP':>7} {'ticket':>7}  dev")
    for r in rows:
        ticket = f"{r['early_bird_step']:.0f}" if r["early_bird_step"] is not None else "-"
        tflop = f"{r['train_tflop']:.1f}" if r["train_tflop"] else "-"
        dev = ", ".join(f"{k} {v:.3f}" for k, v in r["dev"].items())
        print(f"{r['task']:<6} {r['method']:<8} {r['sparsity']:>8g} {r['seconds']:>8.1f} {tflop:>7} {ticket:>7}  {dev}")
    print(f"all {len(rows)} trials: {wall:.1f} s wall ({args.parallel} at a time)")
    arguments = {k: str(v) if isinstance(v, Path) else v for k, v in settings(args).items()}
    payload = {"args": arguments, "sweep_config": str(args.config), "sweep": config.model_dump(mode="json", exclude={"base": {"tasks"}}),
               "device": args.device, "parallel": args.parallel, "threads_per_trial": threads,
               "wall_seconds": wall, "runs": rows}
    path = write_results(results_path("early_bird_wall", args.out), collect(record, f"{threads} per trial"), payload)
    print(f"results: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
