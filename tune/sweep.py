"""``python -m tune.sweep [--config PATH] [dotted.key=value ...] [--resume] [--address ADDR]``

Fans task x method x sparsity x seed trials out with Ray Tune. Post-hoc sweeps run in two
stages: one dense fine-tune per (task, seed) first, then every pruning trial of that group
starts from its saved model. Every trial is an MLflow child run of one parent run per sweep.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from analysis.report import publish
from ticketbert.config import ConfigError, RunConfig
from ticketbert.data import DataError, read_task, resolve_source
from ticketbert.tasks import get_task
from ticketbert.tracking import Tracker, default_tracking_uri
from tune.config import SweepConfig, load_sweep_config
from tune.resources import plan_resources, structured_limits
from tune.summary import print_summary

DEFAULT_CONFIG = Path("configs/quickstart.yaml")
PACKAGED_CONFIG = Path(__file__).resolve().parents[1] / DEFAULT_CONFIG


def trial_overrides(point: dict[str, Any], config: SweepConfig, dense_dirs: dict[tuple, Path]) -> dict[str, Any]:
    """The run-config overrides of one pruning-stage grid point."""
    task, method, sparsity, seed = point["task"], point["method"], point["sparsity"], point["seed"]
    prune: dict[str, Any] = {"method": method, "sparsity": sparsity, "criterion": point["criterion"],
                             "mode": config.grid.mode}
    if method != "none" and config.grid.mode == "posthoc":
        prune["dense_dir"] = str(dense_dirs[(task, seed)])
    return {"name": f"{config.name}-{task}-{method}-{sparsity:g}-s{seed}", "train": {"tasks": [task], "seed": seed},
            "prune": prune, "output_dir": str(config.storage.resolve() / config.name / "runs")}


def dense_overrides(group: dict[str, Any], config: SweepConfig) -> dict[str, Any]:
    return {"name": f"{config.name}-{group['task']}-dense-s{group['seed']}",
            "train": {"tasks": [group["task"]], "seed": group["seed"]}, "prune": {"method": "none"},
            "output_dir": str(config.storage.resolve() / config.name / "dense")}


def base_dict(config: SweepConfig) -> dict[str, Any]:
    """The base run config as sent to trials: absolute paths (trials run in other folders)."""
    base = config.base.model_copy(deep=True)
    base.tracking.uri = base.tracking.uri or default_tracking_uri()
    base.tracking.experiment = config.name
    source, directory = resolve_source(base.data)
    base.data.source = source
    base.data.dir = directory.resolve() if directory else None
    return base.model_dump(mode="json")


def check_data(base: RunConfig, tasks: list[str]) -> None:
    """Read every task once in the driver: a bad file fails here, before Ray starts."""
    for task in tasks:
        read_task(base.data, get_task(task))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tune.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None, help=f"sweep YAML (default {DEFAULT_CONFIG})")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted sweep (Tuner.restore)")
    parser.add_argument("--address", default=None, help="an existing Ray cluster ('auto' or host:port)")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value, e.g. data.dir=../shared/data")
    args = parser.parse_args(argv)
    path = args.config or (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else PACKAGED_CONFIG)
    try:
        config = load_sweep_config(path, args.overrides)
        base = base_dict(config)
        check_data(config.base, config.grid.tasks)
        points, skipped = structured_limits(config)
        resources = plan_resources(config.resources, args.address)
    except (ConfigError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for message in skipped:
        print(message)
    from tune.runner import SweepRunner  # imports ray: only once the config is known to be good

    runner = SweepRunner(config, base, resources, address=args.address, resume=args.resume)
    tracker = Tracker(base["tracking"]["uri"], config.name)
    parent = tracker.start(f"sweep:{config.name}", run_name=config.name, tags={"mode": "sweep", "sweep": config.name},
                           params=config.model_dump(mode="json"))
    try:
        dense_dirs: dict[tuple, Path] = {}
        dense_results = []
        if config.grid.mode == "posthoc" and any(p["method"] != "none" for p in points):
            groups = [(g, dense_overrides(g, config)) for g in config.groups()]
            dense_results = runner.run_stage("dense", [o for _, o in groups], parent.run_id,
                                             search=config.search is not None)
            for (group, _), result in zip(groups, dense_results):
                if "error" in result:
                    raise RuntimeError(f"dense fine-tune {result['label']} failed: {result['error']}")
                dense_dirs[(group["task"], group["seed"])] = Path(result["model_dir"]).parent
        # post-hoc: the dense baseline ("none") of a group is its dense fine-tune, not a new trial
        dense_of = {(g["task"], g["seed"]): r for g, r in zip(config.groups(), dense_results)}
        pruned = [p for p in points if not (dense_dirs and p["method"] == "none")]
        trials = [trial_overrides(p, config, dense_dirs) for p in pruned]
        results = iter(runner.run_stage("prune", trials, parent.run_id,
                                        search=config.search is not None and config.grid.mode != "posthoc"))
        all_results = [dense_of[(p["task"], p["seed"])] if p not in pruned else next(results) for p in points]
        print_summary(points, all_results, dense_results)
        publish(base["tracking"]["uri"], config.name, parent.run_id, config.storage.resolve() / config.name / "analysis")
        parent.close("FINISHED")
    except KeyboardInterrupt:
        parent.close("KILLED")
        print("interrupted: rerun with --resume to continue", file=sys.stderr)
        return 130
    except Exception:
        parent.close("FAILED")
        raise
    finally:
        runner.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
