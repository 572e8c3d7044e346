"""``python -m analysis --experiment NAME [...]``: sparsity thresholds with bootstrap intervals,
overfitting, paired tests, speedup, cost and early-bird tables (report.md) and figures from
MLflow runs.

    python -m analysis --experiment posthoc-real --out analysis_out --tolerance 0.01
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ticketbert.extras import MissingExtra, require


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ticketbert.analysis", description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", action="append", required=True, help="MLflow experiment (repeatable)")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    parser.add_argument("--parent-run-id", default=None, help="only the trials of this sweep's parent run")
    parser.add_argument("--tolerance", type=float, default=0.01, help="'within 1 point' = 0.01 (absolute)")
    parser.add_argument("--out", type=Path, default=Path("analysis_out"))
    args = parser.parse_args(argv)
    if not 0 <= args.tolerance < 1:
        parser.error(f"--tolerance must be in [0, 1) (got {args.tolerance})")
    try:
        require("analysis", "python -m ticketbert.analysis")
    except MissingExtra as exc:
        print(f"error: {exc}")
        return 2
    from ticketbert.analysis.report import build
    from ticketbert.analysis.runs import load_runs

    try:
        runs = load_runs(args.experiment, args.tracking_uri, args.parent_run_id)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    report = build(runs, args.experiment, args.out, args.tolerance, args.tracking_uri)
    print(report.markdown)
    for path in [report.path, *report.figures]:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
