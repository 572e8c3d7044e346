"""One-shot pruning of a fine-tuned model without retraining, per task: the dev metric at
30-80% unstructured sparsity and 2:4 for global magnitude, per-row magnitude, Wanda and
SparseGPT (optionally + recovery epochs, masks kept); the largest sparsity within 1 point of
dense for each; the seconds each level takes; compressed saved sizes at 50% and 2:4.

    python -m bench.oneshot --config configs/single/sts.yaml --model runs/sts-<hash>/model \\
        --out oneshot_sts data.dir=../shared/data

Prints a markdown table; ``--out NAME`` writes ``bench/results/NAME.json`` (a new file) with
the command, versions and hardware.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from bench.common import provenance, save_new
from ticketbert.config import load_config
from ticketbert.models import load_tokenizer
from ticketbert.models.compute import count_prunable
from ticketbert.pruning import load_pruned, make_calibration, save_pruned
from ticketbert.pruning.oneshot import oneshot_prune
from ticketbert.pruning.sparse_storage import storage_report
from ticketbert.run import encode_data, read_data
from ticketbert.training.device import select_device, use_bf16
from ticketbert.training.evaluate import evaluate
from ticketbert.training.loop import fit

LEVELS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
PATTERNS = ["2:4"]
TOLERANCE = 0.01
VARIANTS = {  # name -> (method, scope)
    "magnitude (global)": ("magnitude", "global"),
    "magnitude (row)": ("magnitude", "row"),
    "wanda": ("wanda", None),
    "sparsegpt": ("sparsegpt", None),
}
SIZE_POINTS = ("0.5", "2:4")


def within(rows: list[dict[str, Any]], dense: float, key: str = "dev") -> float:
    """Largest unstructured sparsity whose dev metric, there and at every lower level, is within 1 point."""
    kept = 0.0
    for row in sorted((r for r in rows if r["pattern"] is None), key=lambda r: r["sparsity"]):
        if row[key] < dense - TOLERANCE:
            break
        kept = row["sparsity"]
    return kept


def achieved(model) -> float:
    return 1.0 - count_prunable(model, nonzero=True) / count_prunable(model, nonzero=False)


def main(argv: list[str] | None = None) -> int:
    """Dev metric per method and level, thresholds, times and sizes; see the module docstring."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.oneshot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the config the model was fine-tuned with")
    parser.add_argument("--model", required=True, help="the fine-tuned model directory (a run's model/)")
    parser.add_argument("--levels", type=lambda s: [float(x) for x in s.split(",")], default=LEVELS)
    parser.add_argument("--patterns", nargs="*", default=PATTERNS, help="N:M patterns also measured")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--calibration-examples", type=int, default=256)
    parser.add_argument("--recovery-epochs", type=int, default=0, help="epochs of recovery per level, masks kept")
    parser.add_argument("--out", default=None, help="write bench/results/OUT.json (must not exist)")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value config overrides")
    args = parser.parse_args(argv)
    config = load_config(args.config, ["data.train_eval_examples=200", *args.overrides])
    task = config.train.tasks[0]
    tokenizer = load_tokenizer(config.model.encoder)
    pad_id = tokenizer.pad_token_id
    data = encode_data(config, read_data(config), tokenizer)
    device = select_device(config.train.device)
    dense = load_pruned(args.model).eval().to(device)
    primary = f"dev/{data[task].task.primary_metric}"

    def dev(model) -> float:
        return evaluate(model, data, pad_id=pad_id, batch_size=config.train.eval_batch_size, device=device,
                        bf16=use_bf16(device, config.train.bf16))[primary]

    calibration = make_calibration(data, args.calibration_examples, pad_id=pad_id, seed=config.train.seed)
    dense_dev = dev(dense)
    with tempfile.TemporaryDirectory() as scratch:
        dense_bytes = storage_report(save_pruned(dense, Path(scratch) / "dense")).file_bytes
    print(f"{task}: dense {primary} {dense_dev:.4f}; calibration {calibration.examples} examples "
          f"({calibration.tokens} tokens); dense saved {dense_bytes} bytes", flush=True)
    payload: dict[str, Any] = {**provenance("bench.oneshot", argv), "task": task, "model": str(args.model),
                               "metric": primary, "dense": dense_dev, "dense_file_bytes": dense_bytes,
                               "calibration_examples": calibration.examples, "calibration_tokens": calibration.tokens,
                               "recovery_epochs": args.recovery_epochs, "variants": {}}
    points = [(level, None) for level in args.levels] + [(None, pattern) for pattern in args.patterns]
    for name in args.variants:
        method, scope = VARIANTS[name]
        rows, sizes = [], {}
        for level, pattern in points:
            model = copy.deepcopy(dense)
            torch.manual_seed(config.train.seed)
            result = oneshot_prune(model, method, level, calibration, pattern=pattern, scope=scope)
            row = {"sparsity": result.achieved_sparsity if pattern else level, "pattern": pattern,
                   "dev": dev(model), "seconds": result.seconds, "achieved_sparsity": result.achieved_sparsity,
                   "activation_bytes": result.loop.activation_bytes, "stats_bytes": result.loop.stats_bytes}
            point = pattern or f"{level:g}"
            if point in SIZE_POINTS:
                with tempfile.TemporaryDirectory() as scratch:
                    sizes[point] = asdict(storage_report(save_pruned(model, Path(scratch) / "m", compress=True)))
            if args.recovery_epochs:
                began = time.perf_counter()
                fit(model, data, config.train, pad_id=pad_id, epochs=args.recovery_epochs)
                row.update(dev_recovered=dev(model), recovery_seconds=time.perf_counter() - began,
                           sparsity_after_recovery=achieved(model))
            rows.append(row)
            shown = f"{pattern}" if pattern else f"{level:.0%}"
            extra = f", recovered {row['dev_recovered']:.4f}" if args.recovery_epochs else ""
            print(f"{name} @ {shown}: {primary} {row['dev']:.4f}{extra} ({row['seconds']:.1f}s)", flush=True)
        variant = {"method": method, "scope": result.options.scope, "rows": rows, "sizes": sizes,
                   "kept_within_1pt": within(rows, dense_dev)}
        if args.recovery_epochs:
            variant["kept_within_1pt_recovered"] = within(rows, dense_dev, "dev_recovered")
        payload["variants"][name] = variant
    print(markdown(payload))
    if args.out:
        print(f"wrote {save_new(args.out, payload)}")
    return 0


def markdown(payload: dict[str, Any]) -> str:
    """Dev metric per variant and level, the 1-point threshold, seconds per level, 50% size ratio."""
    columns = [f"{row['sparsity']:.0%}" if row["pattern"] is None else row["pattern"]
               for row in next(iter(payload["variants"].values()))["rows"]]
    lines = [f"| {payload['task']} {payload['metric']} (dense {payload['dense']:.3f}) | " + " | ".join(columns)
             + " | kept within 1 pt | s / level | 50% matrices / file vs dense |", "|---" * (len(columns) + 4) + "|"]
    for name, variant in payload["variants"].items():
        cells = [f"{row['dev']:.3f}" for row in variant["rows"]]
        seconds = sum(row["seconds"] for row in variant["rows"]) / len(variant["rows"])
        size = variant["sizes"].get("0.5")
        ratio = (f"{size['matrices_stored_bytes'] / size['matrices_dense_bytes']:.3f} / "
                 f"{size['file_bytes'] / payload['dense_file_bytes']:.3f}") if size else "-"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {variant['kept_within_1pt']:.0%} | {seconds:.1f} | "
                     f"{ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
