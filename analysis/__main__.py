"""``python -m analysis --experiment NAME [...]``: sparsity thresholds, overfitting and compute
tables (markdown) and figures from MLflow runs.

    python -m analysis --experiment posthoc-real --out analysis_out
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.figures import metric_vs_sparsity, speedup_vs_sparsity
from analysis.runs import load_runs
from analysis.tables import compute, overfitting, sparsity_thresholds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", action="append", required=True, help="MLflow experiment (repeatable)")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or ./mlruns/mlflow.db")
    parser.add_argument("--tolerance", type=float, default=0.01, help="'within 1 point' = 0.01")
    parser.add_argument("--out", type=Path, default=Path("analysis_out"))
    args = parser.parse_args(argv)
    runs = load_runs(args.experiment, args.tracking_uri)
    args.out.mkdir(parents=True, exist_ok=True)
    thresholds = sparsity_thresholds(runs, args.tolerance)
    sections = {
        f"Sparsity kept within {args.tolerance * 100:g} point(s) of dense (dev)": thresholds,
        "Overfitting: train - dev per level": overfitting(runs),
        "Compute per level": compute(runs),
    }
    report = []
    for title, table in sections.items():
        report += [f"## {title}", "", table.to_markdown(index=False, floatfmt=".4f"), ""]
    text = "\n".join(report)
    (args.out / "report.md").write_text(text)
    print(text)
    for path in [*metric_vs_sparsity(runs, args.out), speedup_vs_sparsity(runs, args.out)]:
        print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
