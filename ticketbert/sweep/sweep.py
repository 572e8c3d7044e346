"""``python -m ticketbert.sweep [--config PATH] [dotted.key=value ...] [--resume] [--address ADDR] [--verbose] [--check]``

Fans task x method x sparsity x seed trials out with Ray Tune. Post-hoc sweeps run in two
stages: one dense fine-tune per (task, seed) first, then every pruning trial of that group
starts from its saved model. Every trial is an MLflow child run of one parent run per sweep.
Data: ``data.dir`` / $TICKETBERT_DATA_DIR, else the bundled real sample; ``data.source=synthetic``
only when asked for (its results are marked).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from ticketbert.cli import INTERRUPTED, fail, print_resolved, terminate_as_interrupt
from ticketbert.config import ConfigError, options_not_taken
from ticketbert.data import DataError, DataLocation, resolve_source
from ticketbert.extras import MissingExtra, require
from ticketbert.pruning.methods.description import DENSE, is_dense
from ticketbert.sweep.checks import check_sweep, resolved_grid
from ticketbert.sweep.config import SweepConfig, load_sweep_config
from ticketbert.sweep.records import DenseGroup, GridPoint, TrialResult
from ticketbert.tasks.definition import TaskDefinition
from ticketbert.sweep.resources import TrialResources, plan_resources

DEFAULT_CONFIG = Path("configs/quickstart.yaml")
PACKAGED_CONFIG = Path(__file__).resolve().with_name("quickstart.yaml")  # the default of an installed package


def trial_overrides(point: GridPoint, config: SweepConfig, dense_dirs: dict[DenseGroup, Path],
                    runs_dir: Path) -> dict[str, Any]:
    """The run-config overrides (Tune's JSON-able trial config) of one pruning-stage grid point."""
    task, method, sparsity, seed = point.task, point.method, point.sparsity, point.seed
    prune: dict[str, Any] = {**options_not_taken(method), "method": method, "sparsity": sparsity,
                             "criterion": point.criterion, "mode": config.grid.mode}
    level = f"{sparsity:g}"
    if point.pattern:
        prune["pattern"] = point.pattern
        level = point.pattern.replace(":", "of")
    if not is_dense(method) and config.grid.mode == "posthoc":
        prune["dense_dir"] = str(dense_dirs[point.group])
    return {"name": f"{config.name}-{task}-{method}-{level}-s{seed}", "train": {"tasks": [task], "seed": seed},
            "prune": prune, "output_dir": str(runs_dir)}


def dense_overrides(group: DenseGroup, config: SweepConfig, dense_dir: Path) -> dict[str, Any]:
    """The run-config overrides of one dense fine-tune."""
    return {"name": f"{config.name}-{group.task}-dense-s{group.seed}",
            "train": {"tasks": [group.task], "seed": group.seed}, "prune": {"method": DENSE},
            "output_dir": str(dense_dir)}


def base_dict(config: SweepConfig, tracking_uri: str) -> dict[str, Any]:
    """The base run config as sent to trials: resolved data source, absolute paths (trials run
    in other folders, maybe on other nodes)."""
    base = config.base.model_copy(deep=True)
    base.tracking.uri = base.tracking.uri or tracking_uri
    base.tracking.experiment = config.name
    source, directory = resolve_source(base.data)
    base.data.source = source
    base.data.dir = directory.resolve() if directory and source == "csv" else None
    return base.model_dump(mode="json")


def describe_data(location: DataLocation, definitions: dict[str, TaskDefinition]) -> str:
    """Where the grid's tasks read their rows: the data location, and each task with its own files or dataset."""
    from ticketbert.data.task_rows import own_rows

    own = {name: own_rows(d, location) for name, d in definitions.items()}
    parts = [f"{name}: {origin}" for name, origin in own.items() if origin is not None]
    if any(origin is None for origin in own.values()):
        parts.insert(0, describe_location(location))
    return "; ".join(parts)


def describe_location(location: DataLocation) -> str:
    return {"sample": "the bundled real-data sample (ticketbert/data/sample)",
            "hub": "the Hugging Face hub datasets",
            "synthetic": "SYNTHETIC data (data.source=synthetic): its metrics mean NOTHING about language",
            }.get(location.source, f"the CS224N files in {location.directory}")


def check_data(config: SweepConfig) -> None:
    """Read every task once in the driver: a bad file fails here, before Ray starts, and each
    distinct data warning (synthetic data, malformed rows) is printed once, as one line."""
    from ticketbert.data import read_task, warn_if_synthetic

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_if_synthetic(config.base.data)
        for task in config.grid.tasks:
            read_task(config.base.data, task, config.base.task_definition(task))
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"warning: {message}")


def validate_arguments(args: argparse.Namespace) -> tuple[SweepConfig, DataLocation, TrialResources | None]:
    """Everything that can be checked without heavy imports (torch, transformers, Ray, MLflow):
    the config, what every trial needs (``ticketbert.sweep.checks``), every task's rows, the data
    location and (locally) the resources; notes on options some methods ignore are printed once.
    Raises ConfigError/DataError/ValueError."""
    path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else PACKAGED_CONFIG)
    config = load_sweep_config(path, args.overrides)
    for note in check_sweep(config, local_device=args.address is None):
        print(note)
    location = resolve_source(config.base.data)
    resources = None if args.address else plan_resources(config.resources)
    check_data(config)
    return config, location, resources


def print_locations(name: str, uri: str, root: Path, experiment_id: str, parent_run_id: str) -> None:
    """Where the sweep's results are, and the commands and MLflow UI addresses to look at them
    (the runs table in model-training mode, the parent run's analysis report)."""
    from ticketbert.tracking import UI_ADDRESS, run_address, runs_table_address

    print(f"\nMLflow: experiment '{name}' (parent run {parent_run_id}) at {uri}")
    print(f"files: {root} (Tune state, dense models)")
    served = uri.startswith(("http://", "https://"))
    if not served:
        host, port = UI_ADDRESS.removeprefix("http://").split(":")
        print(f"browse: mlflow ui --backend-store-uri {uri} --host {host} --port {port} --workers 1")
    base = uri if served else UI_ADDRESS
    print(f"runs table: {runs_table_address(base, experiment_id)}")
    print(f"report: {run_address(base, experiment_id, parent_run_id, 'analysis/report.md')}")
    print(f"analyse: python -m analysis --experiment {name}"
          + (f"  (with MLFLOW_TRACKING_URI={uri})" if served else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ticketbert.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None, help=f"sweep YAML (default {DEFAULT_CONFIG})")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted sweep with these settings")
    parser.add_argument("--address", default=None, help="an existing Ray cluster ('auto' or host:port)")
    parser.add_argument("--verbose", action="store_true", help="Ray's status tables and every trial's output")
    parser.add_argument("--check", action="store_true", help="check the sweep, print its grid; run nothing")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value, e.g. data.dir=<CS224N folder>")
    args = parser.parse_args(argv)
    terminate_as_interrupt()
    try:
        require("sweep", "python -m ticketbert.sweep")
        config, location, resources = validate_arguments(args)
    except (ConfigError, DataError, ValueError, MissingExtra) as exc:
        return fail(exc)
    if args.check:
        print_resolved(f"sweep {config.name}", resolved_grid(config))
        return 0
    return run_sweep(config, location, resources, args)


def run_sweep(config: SweepConfig, location: DataLocation, resources: TrialResources | None,
              args: argparse.Namespace) -> int:
    """The sweep itself, once its arguments are known to be good (heavy imports from here on)."""
    from ticketbert.data import data_fingerprint
    from ticketbert.tracking import Tracker, default_tracking_uri
    from ticketbert.sweep.instance import open_instance
    from ticketbert.sweep.resources import cluster_hardware, structured_limits
    from ticketbert.sweep.runner import SweepRunner, connect
    from ticketbert.sweep.summary import print_summary

    try:
        base = base_dict(config, default_tracking_uri())
        points, skipped = structured_limits(config)
        instance = open_instance(config, base, args.resume)
    except (ConfigError, DataError, ValueError) as exc:
        return fail(exc)
    synthetic = location.source == "synthetic"
    uri = base["tracking"]["uri"]
    print(f"sweep {config.name}: {len(points)} grid points on {describe_data(location, config.definitions())}")
    print(f"MLflow experiment '{config.name}' at {uri}; files in {instance.root}")
    for message in skipped:
        print(message)
    started = connect(args.address, args.verbose)
    terminate_as_interrupt()  # again: Ray's core worker installs its own SIGTERM handler (a hard exit)
    try:
        try:
            resources = resources or plan_resources(config.resources, cluster_hardware())
        except ValueError as exc:
            return fail(exc)
        runner = SweepRunner(config, base, resources, instance, resume=args.resume, verbose=args.verbose)
        tracker = Tracker(uri, config.name)
        parent = tracker.start(
            instance.parent_key, run_name=f"[synthetic] {config.name}" if synthetic else config.name,
            tags={"mode": "sweep", "sweep": config.name, "sweep_instance": instance.instance,
                  "data_source": location.source, "synthetic_data": synthetic,
                  "data_fingerprint": data_fingerprint(config.base.data, config.definitions())},
            params=config.model_dump(mode="json"))
        try:
            all_results, dense_results = run_stages(runner, config, points, instance, parent.run_id)
            print_summary(points, all_results, dense_results, describe_data(location, config.definitions()), synthetic,
                          {name: d.metric_label(name) for name, d in config.definitions().items()})
            print_locations(config.name, uri, instance.root, tracker.experiment_id, parent.run_id)
            # the sweep's results are complete and printed here; steps that build on them go below
            from ticketbert.analysis.report import publish  # matplotlib and MLflow reading: only once results exist

            publish(uri, config.name, parent.run_id, instance.root / "analysis")
            parent.close("FINISHED")
        except KeyboardInterrupt:
            parent.close("KILLED")
            print("interrupted: rerun the same command with --resume to continue", file=sys.stderr)
            return INTERRUPTED
        except Exception:
            parent.close("FAILED")
            raise
    finally:
        if started:
            shutdown_ray()
    return 0


def run_stages(runner, config: SweepConfig, points: list[GridPoint], instance,
               parent_run_id: str) -> tuple[list[TrialResult], list[TrialResult]]:
    """The dense stage (post-hoc sweeps), then the pruning stage: (results in the order of
    ``points``, dense results)."""
    dense_dirs: dict[DenseGroup, Path] = {}
    dense_results: list[TrialResult] = []
    if config.grid.mode == "posthoc" and any(not is_dense(p.method) for p in points):
        groups = config.groups()
        dense_results = runner.run_stage("dense", [dense_overrides(g, config, instance.dense_dir) for g in groups],
                                         parent_run_id, search=config.search is not None)
        for group, result in zip(groups, dense_results):
            if not result.ok:
                raise RuntimeError(f"dense fine-tune {result.label} failed: {result.error}")
            dense_dirs[group] = Path(result.model_dir).parent
    # post-hoc: the dense baseline ("none") of a group is its dense fine-tune, not a new trial
    dense_of = dict(zip(config.groups(), dense_results))
    pruned = [p for p in points if not (dense_dirs and is_dense(p.method))]
    trials = [trial_overrides(p, config, dense_dirs, instance.runs_dir) for p in pruned]
    results = iter(runner.run_stage("prune", trials, parent_run_id,
                                    search=config.search is not None and config.grid.mode != "posthoc"))
    return [dense_of[p.group] if p not in pruned else next(results) for p in points], dense_results


def shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
