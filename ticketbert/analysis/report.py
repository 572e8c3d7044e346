"""The analysis report: markdown tables (units in the headers, a seeds column, integers as
integers) and figures written to a folder, and ``publish``, which logs them to a sweep's parent
MLflow run so that opening that run in the UI shows the answer."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from ticketbert.analysis import figures, tables
from ticketbert.analysis.labels import metric_name
from ticketbert.analysis.runs import PRIMARY, load_runs, metric_history
from ticketbert.provenance import DataRecord, collect, write_results
from ticketbert.tracking import default_tracking_uri, run_address

MASK_DISTANCE = "early_bird/mask_distance"
DESCRIPTION_TAG = "mlflow.note.content"  # the run page's rendered "Description"
MAX_DESCRIPTION = 8000  # MLflow's limit on a tag value
ARTIFACT_DIR = "analysis"
TABLE_FILE = f"{ARTIFACT_DIR}/results_per_level.json"


@dataclass
class Report:
    markdown: str
    summary: str = ""  # the header and the threshold table: the parent run's description
    figures: list[Path] = field(default_factory=list)
    results: pd.DataFrame = field(default_factory=pd.DataFrame)  # per task x approach x level, for log_table
    headline: dict[str, float] = field(default_factory=dict)  # the parent run's metrics
    path: Path | None = None


# -- formatting --------------------------------------------------------------------------------------

def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def pct(value) -> str:
    """0.3 -> '30%', 0.333 -> '33.3%'."""
    return "-" if _missing(value) else f"{round(float(value) * 100, 1):g}%"


def num(value, digits: int = 3) -> str:
    return "-" if _missing(value) else f"{float(value):.{digits}f}"


def mean_std(mean, std, digits: int = 3) -> str:
    return num(mean, digits) + ("" if _missing(std) else f" ± {float(std):.{digits}f}")


def interval(low, high, show: Callable = pct) -> str:
    return "no interval" if _missing(low) else f"[{show(low)}, {show(high)}]"


def points(tolerance: float) -> str:
    """0.01 -> '1 point', 0.02 -> '2 points' (of the metric, absolute)."""
    count = round(tolerance * 100, 2)
    return f"{count:g} point" + ("" if count == 1 else "s")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# -- sections ----------------------------------------------------------------------------------------

def threshold_section(table: pd.DataFrame, tolerance: float) -> str:
    rows = []
    for _, r in table.iterrows():
        if r["seeds"] == 0:
            rows.append([r["metric"], r["approach"], 0, "-", "-", "-", "-", "-", "-", "-", r["note"]])
            continue
        rows.append([r["metric"], r["approach"], int(r["seeds"]),
                     f"{mean_std(r['dense_mean'], r['dense_std'])} (median {num(r['dense_median'])})",
                     ", ".join(pct(v) for v in r["kept_per_seed"]), pct(r["kept_mean"]),
                     interval(r["kept_ci_low"], r["kept_ci_high"]),
                     ", ".join(pct(v) for v in r["flops_reduction_per_seed"]), pct(r["flops_reduction_mean"]),
                     pct(r["max_tested"]), r["note"] or ""])
    header = ["task metric", "approach", "seeds", "dense dev (mean ± std)", "kept sparsity per seed",
              "kept sparsity, mean", "95% CI", "kept FLOPs reduction per seed", "FLOPs reduction, mean",
              "max sparsity tested", "note"]
    return (f"## Sparsity kept within {points(tolerance)} of dense\n\n"
            f"Per seed: the largest achieved sparsity at which the dev metric, at that and every lower level, "
            f"is at least that seed's dense dev metric minus {tolerance:g}; FLOPs reduction = 1 - FLOPs per token "
            f"of the pruned model / dense, the largest among those levels (magnitude pruning counts only "
            f"non-zero weights). Mean over seeds with a 95% percentile bootstrap interval "
            f"(`scipy.stats.bootstrap`, 9,999 resamples); with 3 seeds the resampled means take at most 10 "
            f"values, so the interval is coarse; with 1 seed there is none.\n\n" + markdown_table(header, rows))


def level_section(table: pd.DataFrame) -> str:
    rows = [[r["metric"], r["approach"], pct(r["sparsity"]), pct(r["achieved_sparsity"]), int(r["seeds"]),
             mean_std(r["dev_mean"], r["dev_std"]),
             num(r["train_mean"]), mean_std(r["gap_mean"], r["gap_std"]),
             f"[{num(r['gap_min'])}, {num(r['gap_max'])}]"] for _, r in table.iterrows()]
    header = ["task metric", "approach", "target sparsity", "achieved sparsity", "seeds", "dev (mean ± std)",
              "train subsample (mean)", "train - dev gap (mean ± std)", "gap min, max over seeds"]
    return ("## Dev, train and overfitting per level\n\nTrain = the fixed train subsample evaluated like dev; "
            "gap = train minus dev of the same run, then mean ± sample std over seeds.\n\n"
            + markdown_table(header, rows))


def test_section(table: pd.DataFrame) -> str:
    if table.empty:
        return "## Does pruning improve dev over dense?\n\nNo pruned levels above 0."
    rows = [[r["metric"], r["approach"], pct(r["sparsity"]), int(r["seeds"]), num(r["dense_mean"]),
             num(r["pruned_mean"]), num(r["mean_diff"], 4), num(r["t"], 2), num(r["p_one_sided"]),
             num(r["p_holm"]), num(r["cohen_dz"], 2), r["verdict"]] for _, r in table.iterrows()]
    header = ["task metric", "approach", "sparsity", "seeds (pairs)", "dense dev", "pruned dev", "mean diff",
              "t", "p (one-sided)", "p (Holm)", "Cohen's d_z", "verdict"]
    return ("## Does pruning improve dev over dense? (paired over seeds)\n\n"
            "H1: pruned dev > dense dev of the same seed; `scipy.stats.ttest_rel(..., alternative='greater')`; "
            "d_z = mean of the per-seed differences / their sample std; Holm's correction over the levels of "
            "each task x approach; significant at 0.05 after correction.\n\n" + markdown_table(header, rows))


def speedup_section(table: pd.DataFrame) -> str:
    rows = [[metric_name(r["task"]), r["approach"], pct(r["sparsity"]), pct(r["achieved_sparsity"]),
             int(r["seeds"]), num(r["flops_speedup"], 2) + "x", mean_std(r["speedup_mean"], r["speedup_std"], 2) + "x",
             num(r["measured_over_flops"], 2)] for _, r in table.iterrows()]
    header = ["task metric", "approach", "target sparsity", "achieved sparsity", "seeds", "FLOP-count speedup",
              "measured speedup (mean ± std)", "measured / FLOP count"]
    return ("## Inference speedup against FLOP count (per task, never averaged over tasks)\n\n"
            "Measured: median forward time of a batch of 32 dev examples of the task, dense / pruned, timed "
            "interleaved in the same process. Magnitude pruning keeps dense kernels: its FLOP count counts "
            "non-zero weights only.\n\n" + markdown_table(header, rows))


MODEL_HEADER = ["task metric", "approach", "sparsity", "seeds", "dev (mean ± std)"]


def model_cells(row) -> list:
    """The cells naming one model of a per-task table (task, approach, level) and its dev metric."""
    return [row["metric"], row["approach"], pct(row["sparsity"]), int(row["seeds"]),
            mean_std(row["dev_mean"], row["dev_std"])]


def yes(flag) -> str:
    return "yes" if flag else ""


def deployment_section(table: pd.DataFrame) -> str:
    rows = [model_cells(r) + [pct(r["flops_share"]), f"{num(r['speedup_mean'], 2)}x", yes(r["front_flops"]),
                              yes(r["front_speedup"])] for _, r in table.iterrows()]
    header = MODEL_HEADER + ["FLOPs/token (of dense)", "measured speedup", "front: FLOPs", "front: speedup"]
    return ("## Which model to deploy (per task)\n\n"
            "Every model's dev metric against its FLOPs per token (share of the dense model's) and its measured "
            "inference speedup (batch of dev examples, timed against the dense model in the same process). A model "
            "is on a front when no other model of the task is both smaller (or faster) and better.\n\n"
            + markdown_table(header, rows))


def cost_section(table: pd.DataFrame) -> str:
    rows = [model_cells(r) + [num(r["train_flops"] / 1e12, 2), num(r["wall_seconds"] / 60, 1), yes(r["pareto_flops"]),
                              yes(r["pareto_time"])] for _, r in table.iterrows()]
    header = MODEL_HEADER + ["training FLOPs (TFLOP)", "wall time (min)", "Pareto: FLOPs", "Pareto: time"]
    return ("## Training cost against dev metric (per task)\n\n"
            "FLOPs: everything spent to get the model: the dense fine-tune, importance scoring (shared by the levels "
            "of a method) and recovery epochs for post-hoc; `total_train_flops` for early-bird and IMP. Wall time: "
            "the MLflow runs' durations (post-hoc: dense run + the trial), taken with other trials sharing the "
            "machine. A point is on the front when no other model of the task is both cheaper and better.\n\n"
            + markdown_table(header, rows))


def early_bird_section(table: pd.DataFrame, curves_drawn: bool) -> str:
    if table.empty:
        return ""
    def phase(value, scale):
        return "not logged" if _missing(value) else num(value / scale, 2)
    rows = [[r["metric"], r["approach"], pct(r["sparsity"]), int(r["seed"]),
             "-" if _missing(r["early_bird_step"]) else int(r["early_bird_step"]),
             "-" if _missing(r["early_bird_converged"]) else ("yes" if r["early_bird_converged"] else "no (max steps)"),
             phase(r["search_train_flops"], 1e12), phase(r["search_scoring_flops"], 1e12),
             phase(r["total_train_flops"], 1e12), phase(r["search_seconds"], 1), phase(r["prune_seconds"], 1),
             phase(r["final_seconds"], 1), num(r["wall_seconds"] / 60, 1), num(r["dev"])] for _, r in table.iterrows()]
    header = ["task metric", "approach", "sparsity", "seed", "ticket found at step", "converged",
              "search FLOPs (TFLOP)", "mask-draw FLOPs (TFLOP)", "total FLOPs (TFLOP)", "search (s)", "prune (s)",
              "final training (s)", "run wall time (min)", "dev"]
    note = ("" if curves_drawn else
            f"\n\nNo `{MASK_DISTANCE}` history in these runs: mask-distance curves not drawn.")
    return "## Early-bird searches\n\n" + markdown_table(header, rows) + note


def imp_section(table: pd.DataFrame) -> str:
    if table.empty:
        return ""
    rows = [[r["metric"], int(r["seed"]), pct(r["final_sparsity"]), int(r["round"]), pct(r["target_sparsity"]),
             int(r["epochs_so_far"]), num(r["dev"])] for _, r in table.iterrows()]
    header = ["task metric", "seed", "final sparsity", "round", "sparsity of the round", "epochs so far",
              "dev after the round"]
    return "## IMP rounds (rewinding to the pre-trained weights)\n\n" + markdown_table(header, rows)


def header_section(runs: pd.DataFrame, experiments: list[str], tolerance: float) -> str:
    seeds = runs.groupby("task")["seed"].nunique()
    lines = [f"# Analysis of {', '.join(experiments)}", ""]
    if runs["synthetic"].any():
        share = f"{int(runs['synthetic'].sum())} of {len(runs)}"
        lines += [f"**SYNTHETIC DATA ({share} runs tagged `synthetic_data=True`): these metrics mean nothing.**", ""]
    lines += [f"{len(runs)} finished runs; seeds per task: "
              + ", ".join(f"{metric_name(t)} {int(n)}" for t, n in seeds.items())
              + f". Dev metric = `{PRIMARY}`, the task's primary metric. Tolerance {tolerance:g} "
              f"({points(tolerance)}). Every table is per task; nothing is averaged across tasks."]
    few = [metric_name(t) for t, n in seeds.items() if n < 2]
    if few:
        lines += ["", f"Only one seed for {', '.join(few)}: no spread, no confidence interval, no paired test there."]
    return "\n".join(lines)


# -- building --------------------------------------------------------------------------------------

def build(runs: pd.DataFrame, experiments: list[str], out: Path, tolerance: float = 0.01,
          tracking_uri: str | None = None) -> Report:
    """Write report.md and the figures of ``runs`` to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    curve_rows = tables.curves(runs)
    threshold_table = tables.thresholds(curve_rows, tolerance)
    level_table = tables.overfitting(curve_rows)
    cost_table = tables.cost(runs)
    early = tables.early_bird(runs)
    history = metric_history(tracking_uri, early["run_id"].tolist(), MASK_DISTANCE) if not early.empty else \
        pd.DataFrame(columns=["run_id", "step", "value"])
    imp_ids = runs.loc[runs["mode"] == "imp", "run_id"].tolist()
    imp = tables.imp_rounds(runs, metric_history(tracking_uri, imp_ids, PRIMARY) if imp_ids else
                            pd.DataFrame(columns=["run_id", "step", "value"]))
    epsilon = runs.set_index("run_id")["prune.early_bird_epsilon"].dropna().to_dict()

    colors = figures.palette(cost_table["approach"])
    paths = figures.metric_vs_sparsity(curve_rows, out, tolerance, colors)
    speed = figures.speedup(curve_rows, out, colors)
    deployment_table = tables.deployment(curve_rows)
    paths += ([speed] if speed else []) + figures.deployment(deployment_table, curve_rows, out, colors)
    paths += figures.mask_distance(history, early, epsilon, out)

    sections = [header_section(runs, experiments, tolerance), threshold_section(threshold_table, tolerance),
                level_section(level_table), test_section(tables.improvement_tests(curve_rows)),
                speedup_section(tables.speedups(curve_rows)), deployment_section(deployment_table),
                cost_section(cost_table),
                early_bird_section(early, not history.empty), imp_section(imp),
                "## Figures\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in paths)]
    markdown = "\n\n".join(s for s in sections if s) + "\n"
    path = out / "report.md"
    path.write_text(markdown)
    write_provenance(runs, experiments, tracking_uri, out)
    results = tables.levels(curve_rows)
    results.insert(1, "metric", results["task"].map(metric_name))
    return Report(markdown, summary="\n\n".join(sections[:2]), figures=paths, results=results,
                  headline=headline_metrics(threshold_table), path=path)


def write_provenance(runs: pd.DataFrame, experiments: list[str], tracking_uri: str | None, out: Path) -> Path:
    """``out/provenance.json``: the command, the runs read (each with its data fingerprint) from
    which store, package versions and hardware."""
    data = DataRecord(requested=", ".join(experiments), source="mlflow runs",
                      directory=tracking_uri or default_tracking_uri(),
                      files=dict(zip(runs["run_id"], runs["data_fingerprint"])))
    return write_results(out / "provenance.json", collect(data, threads="not used"),
                         {"experiments": experiments, "runs": len(runs)})


def headline_metrics(threshold_table: pd.DataFrame) -> dict[str, float]:
    """The thresholds as metrics of the sweep's parent run (a column in the runs table):
    ``kept_sparsity/<task>/<approach>`` (mean over seeds) with ``_ci_low``/``_ci_high``, and
    ``dense_dev/<task>``."""
    metrics: dict[str, float] = {}
    for _, row in threshold_table[threshold_table["seeds"] > 0].iterrows():
        name = re.sub(r"[^a-z0-9]+", "-", row["approach"].lower()).strip("-")
        key = f"kept_sparsity/{row['task']}/{name}"
        metrics[key] = row["kept_mean"]
        if not _missing(row["kept_ci_low"]):
            metrics[f"{key}_ci_low"], metrics[f"{key}_ci_high"] = row["kept_ci_low"], row["kept_ci_high"]
        metrics[f"dense_dev/{row['task']}"] = row["dense_mean"]
    return metrics


def description(summary: str, limit: int = MAX_DESCRIPTION) -> str:
    """``summary`` plus where the rest is, cut at a line to fit MLflow's tag limit."""
    tail = f"\n\nFull report, figures and the per-level table: Artifacts, `{ARTIFACT_DIR}/`."
    if len(summary) + len(tail) <= limit:
        return summary + tail
    cut = "\n\n(cut to fit the run description)"
    kept = summary[:limit - len(tail) - len(cut)]
    return kept[:kept.rfind("\n")] + cut + tail


def log_results_table(client: MlflowClient, run_id: str, results: pd.DataFrame, out: Path) -> None:
    """``results`` as the run's table artifact (``log_table``, shown as a table in the UI). A rerun
    (e.g. a resumed sweep) replaces it: ``log_table`` would append the rows to the old ones."""
    existing = {f.path for f in client.list_artifacts(run_id, ARTIFACT_DIR)}
    if TABLE_FILE not in existing:
        client.log_table(run_id, data=results, artifact_file=TABLE_FILE)
        return
    path = out / Path(TABLE_FILE).name
    path.write_text(results.to_json(orient="split", index=False))
    client.log_artifact(run_id, str(path), ARTIFACT_DIR)


def publish(tracking_uri: str | None, experiment: str, parent_run_id: str, out_dir: Path,
            tolerance: float = 0.01) -> Report | None:
    """Analyse the trials of one sweep (children of ``parent_run_id``) and log the answer to the
    parent run: ``analysis/report.md``, the figures, the per-level results table
    (``MlflowClient.log_table``) and the report as the run's description. Returns None, after
    saying why, when the sweep has no finished trial to analyse."""
    uri = tracking_uri or default_tracking_uri()
    try:
        runs = load_runs([experiment], uri, parent_run_id=parent_run_id)
    except ValueError as exc:
        print(f"analysis: nothing to report: {exc}")
        return None
    report = build(runs, [experiment], Path(out_dir), tolerance, uri)
    client = MlflowClient(uri)
    for path in [report.path, Path(out_dir) / "provenance.json", *report.figures]:
        client.log_artifact(parent_run_id, str(path), ARTIFACT_DIR)
    log_results_table(client, parent_run_id, report.results, Path(out_dir))
    client.log_batch(parent_run_id, metrics=[Metric(k, float(v), int(time.time() * 1000), 0)
                                             for k, v in report.headline.items()])
    client.set_tag(parent_run_id, DESCRIPTION_TAG, description(report.summary))
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    print(f"analysis: {report.path} and {len(report.figures)} figures, logged to parent run {parent_run_id} "
          f"(artifacts/{ARTIFACT_DIR}); in the MLflow UI: "
          f"{run_address('', experiment_id, parent_run_id, f'{ARTIFACT_DIR}/report.md')}")
    return report
