"""(1) Measured CPU latency speedup of physically pruned MiniLM at 25/50/75% structured
sparsity against its FLOP-count speedup; (2) time of `taylor` vs `loss_increment` scoring of
every head, and their Spearman rank agreement.

    python -m bench.pruning [--model DIR]   # DIR: a fine-tuned SST model (save_pruned); default: pre-trained MiniLM
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from scipy import stats

from bench.common import add_output_arguments, bench_data, save
from ticketbert.config import ModelConfig
from ticketbert.data import collate
from ticketbert.tasks.model import build_model
from ticketbert.measure import paired_latency
from ticketbert.pruning import load_pruned, make_calibration, prune, score
from ticketbert.pruning.api import PruningReport

SEQ_LEN = 128
BATCH = 32


def thin_uniformly(model, sparsity: float) -> PruningReport:
    """Remove the same share of heads and FFN neurons in every layer (by L1): ``sparsity`` of
    the prunable weights, spread evenly, so that every matmul shrinks alike."""
    heads = prune(model, "heads", sparsity / 3, criterion="l1", scope="layer")
    ffn = prune(model, "ffn", (2 * sparsity / 3) / (1 - sparsity / 3), criterion="l1", scope="layer")
    before, after = heads.flops_per_token_before, ffn.flops_per_token_after
    return PruningReport("heads+ffn", "l1", sparsity, 1 - (1 - heads.achieved_sparsity) * (1 - ffn.achieved_sparsity),
                         flops_per_token_before=before, flops_per_token_after=after)


def latency_table(model, batch, task) -> list[dict]:
    rows = []
    for method, levels, thin in (("heads+ffn", (0.25, 0.5, 0.75), thin_uniformly), ("layers", (0.25, 0.5, 0.75), None),
                                 ("ffn", (0.25, 0.5), None)):
        for level in levels:
            pruned = copy.deepcopy(model)
            report = thin(pruned, level) if thin else prune(pruned, method, level, criterion="l1")
            dense_ms, pruned_ms = paired_latency(model, pruned, task, batch)
            measured = dense_ms / pruned_ms
            rows.append({"method": method, "target": level, "achieved": report.achieved_sparsity,
                         "dense_ms": dense_ms, "pruned_ms": pruned_ms, "measured_speedup": measured,
                         "flops_speedup": report.flops_speedup, "ratio": measured / report.flops_speedup})
    return rows


def scoring_comparison(model, data, pad_id: int, examples: int) -> dict:
    calibration = make_calibration(data, examples, pad_id=pad_id, batch_size=32)
    timings, scores = {}, {}
    for criterion in ("taylor", "loss_increment"):
        start = time.perf_counter()
        scores[criterion] = torch.cat(score(model, "heads", criterion, calibration).values)
        timings[criterion] = time.perf_counter() - start
    rho = stats.spearmanr(scores["taylor"].numpy(), scores["loss_increment"].numpy()).statistic
    return {"examples": calibration.examples, "heads": int(scores["taylor"].numel()), "seconds": timings,
            "spearman": float(rho)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pruning", description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="fine-tuned SST model directory (default: pre-trained MiniLM + new head)")
    parser.add_argument("--calibration", type=int, default=256, help="calibration examples for scoring")
    add_output_arguments(parser)
    args = parser.parse_args()
    data, tokenizer, record = bench_data(["sst"], args.data_dir, [f"data.max_length={SEQ_LEN}"])
    synthetic = record.source == "synthetic"
    torch.manual_seed(0)
    model = (load_pruned(args.model) if args.model else build_model(ModelConfig(), [data["sst"].task])).eval()
    sst = data["sst"]
    longest = sorted(range(len(sst.dev)), key=lambda i: -sst.dev.lengths[i])[:BATCH]
    batch = collate(sst.dev, longest, tokenizer.pad_token_id)
    batch.input_ids, batch.attention_mask, batch.token_type_ids = (
        torch.nn.functional.pad(t, (0, SEQ_LEN - t.shape[1]), value=v)
        for t, v in ((batch.input_ids, tokenizer.pad_token_id), (batch.attention_mask, 1), (batch.token_type_ids, 0)))
    rows = latency_table(model, batch, "sst")
    print(f"(1) CPU latency, batch {BATCH} x seq {SEQ_LEN}, {torch.get_num_threads()} threads"
          + f" ({record.source} data)")
    print(f"{'method':<10} {'target':>6} {'achieved':>8} {'dense ms':>9} {'pruned ms':>9} {'measured':>8} "
          f"{'FLOPs':>6} {'ratio':>6}")
    for r in rows:
        print(f"{r['method']:<10} {r['target']:>6.2f} {r['achieved']:>8.3f} {r['dense_ms']:>9.1f} {r['pruned_ms']:>9.1f} "
              f"{r['measured_speedup']:>7.2f}x {r['flops_speedup']:>5.2f}x {r['ratio']:>6.2f}")
    comparison = scoring_comparison(model, data, tokenizer.pad_token_id, args.calibration)
    t = comparison["seconds"]
    print(f"(2) scoring all {comparison['heads']} heads on {comparison['examples']} calibration examples: "
          f"taylor {t['taylor']:.1f} s, loss_increment {t['loss_increment']:.1f} s "
          f"({t['loss_increment'] / t['taylor']:.0f}x); Spearman rank agreement {comparison['spearman']:.3f}")
    save("pruning", args.out, record,
         {"model": args.model, "synthetic": synthetic, "latency": rows, "scoring": comparison})


if __name__ == "__main__":
    main()
