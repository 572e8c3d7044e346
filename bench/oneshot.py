"""One-shot pruning of a fine-tuned model without retraining, per task: the dev metric at
30-80% unstructured sparsity and 2:4 for global magnitude, per-row magnitude, Wanda and
SparseGPT (optionally + recovery epochs, masks kept, at every point or at ``--recovery-at``);
the largest sparsity within 1 point of dense for each; the seconds each level and each
recovery take; compressed saved sizes at 50% and 2:4. Recovery trains on the task loss, plus
``--distill-alpha`` x the distillation loss towards the dense model (``prune.distill_temperature``).

    python -m bench.oneshot --config configs/single/sts.yaml --model runs/sts-<hash>/model \\
        --data-dir <CS224N data> --recovery-epochs 1 --out bench/results/oneshot_sts.json

Prints a markdown table and writes a results file with its provenance: ``--out``, else a new
file under ``bench/runs/``.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from bench.common import add_output_arguments, load_fine_tuned, save, settings
from bench.pages import oneshot_table
from bench.thresholds import kept_within
from ticketbert.models.compute import count_prunable
from ticketbert.pruning import make_calibration, save_pruned
from ticketbert.pruning.distill import Distiller
from ticketbert.pruning.oneshot import oneshot_prune
from ticketbert.pruning.sparse_storage import storage_report
from ticketbert.training.device import select_device, use_bf16
from ticketbert.training.evaluate import evaluate
from ticketbert.training.loop import fit

LEVELS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
PATTERNS = ["2:4"]
VARIANTS = {  # name -> (method, scope)
    "magnitude (global)": ("magnitude", "global"),
    "magnitude (row)": ("magnitude", "row"),
    "wanda": ("wanda", None),
    "sparsegpt": ("sparsegpt", None),
}
SIZE_POINTS = ("0.5", "2:4")


def within(rows: list[dict[str, Any]], dense: float, key: str = "dev") -> float:
    """Largest unstructured sparsity whose dev metric, there and at every lower level measured
    (rows holding ``key``), is within 1 point."""
    return kept_within([r for r in rows if r["pattern"] is None and key in r], dense, order="sparsity",
                       value="sparsity", dev=key)


def point_name(level: float | None, pattern: str | None) -> str:
    """How a point is named on the command line and in ``sizes``: ``0.5`` or ``2:4``."""
    return pattern or f"{level:g}"


def achieved(model) -> float:
    return 1.0 - count_prunable(model, nonzero=True) / count_prunable(model, nonzero=False)


def main(argv: list[str] | None = None) -> int:
    """Dev metric per method and level, thresholds, times and sizes; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.oneshot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the config the model was fine-tuned with")
    parser.add_argument("--model", required=True, help="the fine-tuned model directory (a run's model/)")
    parser.add_argument("--levels", type=lambda s: [float(x) for x in s.split(",")], default=LEVELS)
    parser.add_argument("--patterns", nargs="*", default=PATTERNS, help="N:M patterns also measured")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--calibration-examples", type=int, default=256)
    parser.add_argument("--recovery-epochs", type=int, default=0, help="epochs of recovery per level, masks kept")
    parser.add_argument("--distill-alpha", type=float, default=0.0,
                        help="recovery loss: task loss + ALPHA x distillation from the dense model (0: task loss)")
    parser.add_argument("--recovery-at", nargs="*", default=None, metavar="POINT",
                        help="the points recovered (e.g. 0.5 0.7 2:4; default: every point)")
    parser.add_argument("--recovery-variants", nargs="*", default=None, choices=list(VARIANTS),
                        help="the variants recovered (default: every variant)")
    add_output_arguments(parser)
    parser.add_argument("overrides", nargs="*", help="dotted.key=value config overrides")
    args = parser.parse_args(argv)
    points = [(level, None) for level in args.levels] + [(None, pattern) for pattern in args.patterns]
    unknown = set(args.recovery_at or ()) - {point_name(*p) for p in points}
    if unknown:
        parser.error(f"--recovery-at: {', '.join(sorted(unknown))} is not among the measured points")
    loaded = load_fine_tuned(args)
    config, record, task, data, pad_id = loaded.config, loaded.record, loaded.task, loaded.data, loaded.pad_id
    device = select_device(config.train.device)
    dense = loaded.model.to(device)
    primary = f"dev/{data[task].task.primary_metric}"

    def dev(model) -> float:
        return evaluate(model, data, pad_id=pad_id, batch_size=config.train.eval_batch_size, device=device,
                        bf16=use_bf16(device, config.train.bf16))[primary]

    alpha = args.distill_alpha
    teacher = Distiller(dense, alpha, config.prune.distill_temperature) if alpha > 0 else None
    calibration = make_calibration(data, args.calibration_examples, pad_id=pad_id, seed=config.train.seed)
    dense_dev = dev(dense)
    with tempfile.TemporaryDirectory() as scratch:
        dense_bytes = storage_report(save_pruned(dense, Path(scratch) / "dense")).file_bytes
    print(f"{task}: dense {primary} {dense_dev:.4f}; calibration {calibration.examples} examples "
          f"({calibration.tokens} tokens); dense saved {dense_bytes} bytes", flush=True)
    payload: dict[str, Any] = {"settings": settings(args), "task": task, "model": Path(args.model).name,
                               "metric": primary, "dense": dense_dev, "dense_file_bytes": dense_bytes,
                               "seed": config.train.seed,
                               "calibration_examples": calibration.examples, "calibration_tokens": calibration.tokens,
                               "recovery_epochs": args.recovery_epochs, "recovery_distill_alpha": alpha,
                               "variants": {}}
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
            point = point_name(level, pattern)
            if point in SIZE_POINTS:
                with tempfile.TemporaryDirectory() as scratch:
                    sizes[point] = asdict(storage_report(save_pruned(model, Path(scratch) / "m", compress=True)))
            recover = (args.recovery_epochs and (args.recovery_at is None or point in args.recovery_at)
                       and (args.recovery_variants is None or name in args.recovery_variants))
            if recover:
                began = time.perf_counter()
                trained = fit(model, data, config.train, pad_id=pad_id, epochs=args.recovery_epochs,
                              batch_loss=teacher)
                row.update(dev_recovered=trained.history[-1][primary], recovery_seconds=time.perf_counter() - began,
                           sparsity_after_recovery=achieved(model))
            rows.append(row)
            shown = f"{pattern}" if pattern else f"{level:.0%}"
            extra = f", recovered {row['dev_recovered']:.4f}" if recover else ""
            print(f"{name} @ {shown}: {primary} {row['dev']:.4f}{extra} ({row['seconds']:.1f}s)", flush=True)
        variant = {"method": method, "scope": result.options.scope, "rows": rows, "sizes": sizes,
                   "kept_within_1pt": within(rows, dense_dev)}
        if any("dev_recovered" in row for row in rows):
            variant["kept_within_1pt_recovered"] = within(rows, dense_dev, "dev_recovered")
        payload["variants"][name] = variant
    print(oneshot_table(payload))
    save(f"oneshot_{task}", args.out, record, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
