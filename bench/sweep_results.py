"""A finished sweep's results as a results file: the dense dev metric per task and seed, every
pruning trial's dev and train metric, achieved sparsity and measured speedup, and the largest
sparsity within 1 point of dense per task x method (at that and every lower level), read from
MLflow.

    python -m bench.sweep_results --experiment sst2 --config configs/sst2.yaml \\
        --out bench/results/declared_task_sst2.json

``--config`` is the sweep's config: its declared tasks' files are fingerprinted into the
provenance (the data the sweep read), and the command that ran the sweep is recorded.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench.common import results_path
from bench.thresholds import TOLERANCE, kept_within
from ticketbert.analysis.runs import PRIMARY, TRAIN_PRIMARY, load_runs
from ticketbert.provenance import collect, data_record, write_results
from ticketbert.pruning.methods import is_dense
from ticketbert.sweep.config import load_sweep_config

def sweep_results(experiment: str, tracking_uri: str | None) -> dict[str, Any]:
    """Dense and pruned rows, and thresholds per task x seed x method, of ``experiment``'s trials."""
    runs = load_runs([experiment], tracking_uri)
    dense_rows = runs[runs["method"].map(is_dense)]
    dense = {(r.task, int(r.seed)): {"task": r.task, "seed": int(r.seed), "dev": float(r[PRIMARY]),
                                     "train": float(r[TRAIN_PRIMARY])} for _, r in dense_rows.iterrows()}
    trials = []
    for _, r in runs[~runs["method"].map(is_dense)].iterrows():
        trials.append({"task": r.task, "seed": int(r.seed), "method": r.method, "criterion": r.criterion,
                       "pattern": None if r.pattern == "none" else r.pattern, "sparsity": float(r.sparsity),
                       "achieved_sparsity": float(r["achieved_sparsity"]), "dev": float(r[PRIMARY]),
                       "train": float(r[TRAIN_PRIMARY]), "speedup": float(r["speedup"]),
                       "flops_reduction": float(r["flops_reduction"])})
    trials.sort(key=lambda t: (t["task"], t["seed"], t["method"], t["sparsity"]))
    thresholds = []
    for task, seed in sorted(dense):
        for method in sorted({t["method"] for t in trials if (t["task"], t["seed"]) == (task, seed)}):
            levels = [t for t in trials if (t["task"], t["seed"], t["method"], t["pattern"]) == (task, seed, method, None)]
            thresholds.append({"task": task, "seed": seed, "method": method,
                               "kept_sparsity": kept_within(levels, dense[(task, seed)]["dev"], order="sparsity",
                                                             value="achieved_sparsity")})
    return {"experiment": experiment, "metric": PRIMARY, "tolerance": TOLERANCE, "dense": list(dense.values()),
            "trials": trials, "thresholds": thresholds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_results", description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", required=True, help="the sweep's MLflow experiment (its name)")
    parser.add_argument("--config", type=Path, required=True, help="the sweep config that ran it")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    parser.add_argument("--out", type=Path, default=None, help="results file (default: a new file under bench/runs/)")
    args = parser.parse_args(argv)
    config = load_sweep_config(args.config)
    files = [Path(path) for task in config.grid.tasks for path in (config.base.task_definition(task).files or {}).values()]
    payload = {"sweep_command": f"python -m tune.sweep --config {args.config}", **sweep_results(args.experiment,
                                                                                                 args.tracking_uri)}
    provenance = collect(data_record(str(args.config), "declared task files", files[0].parent if files else None,
                                     files), threads="1 per trial")
    path = write_results(results_path(f"sweep-{args.experiment}", args.out), provenance, payload)
    for row in payload["thresholds"]:
        print(f"{row['task']} s{row['seed']} {row['method']}: {row['kept_sparsity']:.1%} kept within 1 point")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
