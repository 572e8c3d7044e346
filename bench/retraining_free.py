"""Retraining-free structured pruning of a fine-tuned MiniLM, per task: the dev metric
at 10-60% FLOPs reduction for ``taylor`` heads / FFN, ``fisher`` heads / FFN, the joint
``heads+ffn`` + ``fisher``, + ``lstsq`` repair, + 1 epoch of distilled recovery; the largest FLOPs
reduction within 1 point of dense; the wall time of scoring + search + repair; the measured CPU
speedup of each physically pruned model; and every criterion's Spearman rank agreement with the
exact ``loss_increment`` (all heads; a seeded random sample of FFN neurons).

    python -m bench.retraining_free --config configs/single/sts.yaml --model runs/sts-<hash>/model \\
        --data-dir <CS224N folder> [--out bench/results/retraining_free_sts.json]

Results: printed as markdown and written to a new file under ``bench/runs/`` (or ``--out``; a
partial rerun with ``--only`` keeps the other rows of an existing ``--out`` file).
Single-kind methods are planned at the weight sparsity that removes the target share of FLOPs
(their units' FLOPs per weight are uniform); every row reports the FLOPs reduction achieved.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

import torch
from scipy import stats

from bench.common import add_output_arguments, load_fine_tuned, results_path, save
from bench.thresholds import kept_within
from ticketbert.config import PruneConfig
from ticketbert.measure import prune_and_measure
from ticketbert.models.families import find_encoder
from ticketbert.pruning import make_calibration, method_limit, score
from ticketbert.pruning.methods import describe
from ticketbert.pruning.criteria import get_criterion
from ticketbert.pruning.methods.joint import unit_flops
from ticketbert.pruning.units import UNIT_KINDS

LEVELS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


def weight_sparsity_for(model, kind: str, flops_reduction: float) -> float:
    """The weight sparsity of ``kind`` that removes ``flops_reduction`` of the FLOPs per token."""
    encoder = find_encoder(model)
    flops = sum(float(f.sum()) for k in ("heads", "ffn") for f in unit_flops(encoder, k))
    per_weight = sum(float(f.sum()) for f in unit_flops(encoder, kind)) / sum(
        float(w.sum()) for w in UNIT_KINDS[kind].weight_counts(encoder))
    weights = sum(float(w.sum()) for k in ("heads", "ffn") for w in UNIT_KINDS[k].weight_counts(encoder))
    return flops_reduction * flops / per_weight / weights


def variants(recovery_levels: list[float]) -> list[dict[str, Any]]:
    joint = dict(method="heads+ffn", criterion="fisher", round_to=8)
    return [
        dict(name="heads (taylor)", method="heads", criterion="taylor"),
        dict(name="ffn (taylor)", method="ffn", criterion="taylor"),
        dict(name="heads (fisher)", method="heads", criterion="fisher"),
        dict(name="ffn (fisher)", method="ffn", criterion="fisher"),
        dict(name="heads+ffn (fisher)", **joint),
        dict(name="heads+ffn (fisher) + lstsq", repair="lstsq", **joint),
        dict(name="heads+ffn (fisher) + lstsq + 1 distilled epoch", repair="lstsq", recovery=1,
             levels=recovery_levels, **joint),
    ]


def spearman_table(model, data, pad_id: int, examples: int, ffn_sample: int, seed: int) -> dict[str, Any]:
    """Every criterion against exact loss_increment: all heads; ``ffn_sample`` random neurons."""
    calibration = make_calibration(data, examples, pad_id=pad_id, seed=seed)
    encoder = find_encoder(model)
    base = calibration.loss(model)
    result: dict[str, Any] = {"calibration_examples": calibration.examples}
    for kind in ("heads", "ffn"):
        unit = UNIT_KINDS[kind]
        units = [(i, u) for i, n in enumerate(unit.counts(encoder)) for u in range(n)]
        if kind == "ffn":
            units = sorted(random.Random(seed).sample(units, ffn_sample))
        began = time.perf_counter()
        exact = []
        with unit.gates(encoder) as gates:
            for i, u in units:
                with torch.no_grad():
                    gates[i][u] = 0.0
                exact.append(calibration.loss(model) - base)
                with torch.no_grad():
                    gates[i][u] = 1.0
        row: dict[str, Any] = {"units": len(units), "exact_seconds": time.perf_counter() - began}
        for name in ("l1", "taylor", "fisher", "fisher_batch"):
            began = time.perf_counter()
            values = get_criterion(name)(model, encoder, unit, calibration)
            row[f"{name}_seconds"] = time.perf_counter() - began
            picked = [float(values[i][u]) for i, u in units]
            row[name] = float(stats.spearmanr(picked, exact).statistic)
        result[kind] = row
        print(f"spearman vs exact loss_increment, {kind} ({len(units)} units, {calibration.examples} examples): "
              + ", ".join(f"{n} {row[n]:.3f}" for n in ("l1", "taylor", "fisher", "fisher_batch")), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retraining_free", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the config the model was fine-tuned with")
    parser.add_argument("--model", required=True, help="the fine-tuned model directory")
    parser.add_argument("--levels", type=lambda s: [float(x) for x in s.split(",")], default=LEVELS)
    parser.add_argument("--recovery-levels", type=lambda s: [float(x) for x in s.split(",")], default=[0.4, 0.5, 0.6])
    parser.add_argument("--calibration-examples", type=int, default=512)
    parser.add_argument("--spearman-examples", type=int, default=128)
    parser.add_argument("--ffn-sample", type=int, default=256)
    parser.add_argument("--only", nargs="*", default=None,
                        help="run only these variant names (the others keep their rows in the results file, "
                             "and these their rows at levels not rerun)")
    parser.add_argument("--no-spearman", action="store_true", help="keep the results file's Spearman table")
    add_output_arguments(parser)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    loaded = load_fine_tuned(args)
    config, record, task, data, pad_id, dense = (loaded.config, loaded.record, loaded.task, loaded.data,
                                                 loaded.pad_id, loaded.model)
    torch.manual_seed(0)
    calibration = make_calibration(data, args.calibration_examples, pad_id=pad_id, seed=config.train.seed)
    dense_metrics = prune_and_measure(dense, score(dense, "ffn", "l1"), 0.0, data, train=config.train, pad_id=pad_id)
    primary = f"dev/{data[task].task.primary_metric}"
    dense_dev = dense_metrics[primary]
    print(f"{task}: dense {primary} {dense_dev:.4f}; calibration {calibration.examples} examples", flush=True)
    payload: dict[str, Any] = {"task": task, "model": str(args.model), "metric": primary, "dense": dense_dev,
                               "calibration_examples": calibration.examples, "variants": {}}
    path = results_path(f"retraining_free_{task}", args.out)
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    if args.only is not None:  # a partial rerun updates the earlier results
        payload["variants"] = earlier.get("variants", {})
    if args.no_spearman and "spearman" in earlier:
        payload["spearman"] = earlier["spearman"]
    score_cache: dict[tuple[str, str], tuple[Any, float]] = {}
    for variant in variants(args.recovery_levels):
        if args.only is not None and variant["name"] not in args.only:
            continue
        key = (variant["method"], variant["criterion"])
        if key not in score_cache:
            began = time.perf_counter()
            score_cache[key] = (score(dense, *key, calibration), time.perf_counter() - began)
        scores, scoring_seconds = score_cache[key]
        options = PruneConfig(method=variant["method"], criterion=variant["criterion"], repair=variant.get("repair"),
                              round_to=variant.get("round_to"), recovery_epochs=variant.get("recovery", 0),
                              distill_alpha=1.0 if variant.get("recovery") else 0.0, distill_temperature=2.0)
        rows = []
        for level in variant.get("levels", args.levels):
            flops_budget = describe(variant["method"]).takes("budget")  # the level is a FLOPs reduction already
            sparsity = level if flops_budget else weight_sparsity_for(dense, variant["method"], level)
            if sparsity > method_limit(dense, variant["method"]) + 1e-9:
                continue
            metrics = prune_and_measure(dense, scores, sparsity, data, train=config.train, pad_id=pad_id,
                                        recovery_epochs=options.recovery_epochs, options=options,
                                        calibration=calibration)
            row = {"level": level, "dev": metrics[primary], "flops_reduction": metrics["flops_reduction"],
                   "achieved_sparsity": metrics["achieved_sparsity"], "speedup": metrics["speedup"],
                   "flops_speedup": metrics["flops_speedup"], "scoring_seconds": scoring_seconds,
                   "search_seconds": metrics["search_seconds"], "repair_seconds": metrics.get("repair_seconds", 0.0),
                   "unrepaired_layers": metrics.get("repair_unrepaired_layers", 0.0)}
            rows.append(row)
            print(f"{variant['name']} @ {level:.0%} FLOPs: {primary} {row['dev']:.4f} (achieved FLOPs -"
                  f"{row['flops_reduction']:.1%}, weights -{row['achieved_sparsity']:.1%}, measured speedup "
                  f"{row['speedup']:.2f}x vs FLOPs {row['flops_speedup']:.2f}x; score {scoring_seconds:.1f}s search "
                  f"{row['search_seconds']:.2f}s repair {row['repair_seconds']:.1f}s)", flush=True)
        measured = {row["level"] for row in rows}  # a partial rerun keeps the variant's other levels
        rows = sorted([r for r in payload["variants"].get(variant["name"], {}).get("rows", [])
                       if r["level"] not in measured] + rows, key=lambda r: r["level"])
        payload["variants"][variant["name"]] = {"rows": rows, "kept_flops_reduction": kept_within(rows, dense_dev, order="level",
                                                                                      value="flops_reduction")}
        order = [v["name"] for v in variants(args.recovery_levels)]
        payload["variants"] = dict(sorted(payload["variants"].items(), key=lambda kv: order.index(kv[0])))
        save(f"retraining_free_{task}", path, record, payload)
    if not args.no_spearman:
        payload["spearman"] = spearman_table(dense, data, pad_id, args.spearman_examples, args.ffn_sample,
                                             config.train.seed)
    save(f"retraining_free_{task}", path, record, payload)
    print(markdown(payload))
    return 0


def markdown(payload: dict[str, Any]) -> str:
    """The task's table: dev metric per FLOPs-reduction level, threshold, times, speedups."""
    levels = sorted({row["level"] for v in payload["variants"].values() for row in v["rows"]})
    lines = [f"| {payload['task']} {payload['metric']} (dense {payload['dense']:.3f}) | "
             + " | ".join(f"{level:.0%}" for level in levels) + " | kept within 1 pt | measured speedup at 40% |",
             "|---" * (len(levels) + 3) + "|"]
    for name, variant in payload["variants"].items():
        by_level = {row["level"]: row for row in variant["rows"]}
        cells = [f"{by_level[level]['dev']:.3f}" if level in by_level else "-" for level in levels]
        at40 = by_level.get(0.4)
        lowest = min(by_level) if by_level else 0.0
        kept = variant["kept_flops_reduction"]
        shown = f"< {lowest:.0%} (lower levels not run)" if kept == 0.0 and lowest > 0.1 else f"{kept:.0%}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {shown} | "
                     + (f"{at40['speedup']:.2f}x ({at40['flops_speedup']:.2f}x FLOPs)" if at40 else "-") + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
