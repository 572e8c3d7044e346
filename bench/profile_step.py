"""``python -m bench.profile_step``: where a (pruned) MiniLM train step spends its time.

torch.profiler over real length-grouped SST batches, dense and FFN-pruned (kept widths as
``l1`` leaves them and rounded to a multiple), in fp32 and bf16 autocast: the top operators by
self CPU time, with their input shapes; then the FFN matmul pair alone (forward + backward) at
each kept width, to separate kernel speed by shape from everything else. Figures in
``bench/results/profile_step.json``.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from bench.common import add_output_arguments, bench_data, save, settings
from ticketbert.config import ModelConfig, TrainConfig
from ticketbert.data import collate, length_grouped_batches
from ticketbert.tasks.model import build_model
from ticketbert.pruning import prune
from ticketbert.training.device import autocast, select_device
from ticketbert.training.loop import build_optimizer


def steps(model, task, batches, device, bf16: bool) -> None:
    optimizer = build_optimizer(model, TrainConfig(lr=1e-5))
    for batch in batches:
        batch = batch.to(device)
        with autocast(device, bf16):
            loss = task.loss(model(task.name, batch), batch.labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def top_ops(model, task, batches, device, bf16: bool, rows: int) -> tuple[float, list[dict]]:
    steps(model, task, batches[:1], device, bf16)  # warm-up
    began = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        steps(model, task, batches[1:], device, bf16)
    seconds = time.perf_counter() - began
    table = prof.key_averages(group_by_input_shape=True)
    ranked = sorted(table, key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    total = sum(e.self_cpu_time_total for e in table)
    return seconds, [{"op": e.key, "shapes": str(e.input_shapes)[:80], "calls": e.count,
                      "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total} for e in ranked]


def ffn_pair_ms(width: int, tokens: int, bf16: bool, repeats: int = 20) -> float:
    """Median ms of the FFN matmul pair (hidden 384 -> width -> 384) forward + backward."""
    torch.manual_seed(0)
    up, down = torch.nn.Linear(384, width), torch.nn.Linear(width, 384)
    x = torch.randn(tokens, 384, requires_grad=True)
    device = torch.device("cpu")
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        with autocast(device, bf16):
            out = down(torch.nn.functional.gelu(up(x)))
        out.float().sum().backward()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return 1e3 * sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_step", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rows", type=int, default=12)
    parser.add_argument("--round-to", type=int, default=64)
    add_output_arguments(parser)
    args = parser.parse_args()
    data, tokenizer, record = bench_data(["sst"], args.data_dir)
    sst = data["sst"]
    device = select_device("cpu")
    generator = torch.Generator().manual_seed(0)
    index_batches = length_grouped_batches(sst.train.lengths, args.batch, generator)[: args.steps + 1]
    batches = [collate(sst.train, b, tokenizer.pad_token_id) for b in index_batches]
    tokens = int(sum(b.input_ids.numel() for b in batches[1:]) / args.steps)
    results: dict = {"profiles": {}, "ffn_pair_ms": {}}
    for bf16 in (False, True):
        for label, sparsity in (("dense", 0.0), ("FFN 30% (l1)", 0.3)):
            torch.manual_seed(0)
            model = build_model(ModelConfig(), [data["sst"].task]).train()
            if sparsity:
                prune(model, "ffn", sparsity, criterion="l1")
            name = f"{label}, {'bf16' if bf16 else 'fp32'}"
            seconds, rows = top_ops(model, sst.task, batches, device, bf16, args.rows)
            results["profiles"][name] = {"seconds": seconds, "top": rows}
            print(f"\n{name}: {seconds:.2f} s for {args.steps} profiled steps")
            for row in rows:
                print(f"  {row['self_ms']:>9.1f} ms {row['share']:>6.1%} x{row['calls']:<4} {row['op']:<28} {row['shapes']}")
    kept = round(1536 * 0.7)
    widths = [1536, kept, -(-kept // args.round_to) * args.round_to, 1024, 768]
    print(f"\nFFN pair 384->w->384, forward+backward on {tokens} tokens (median of 20)")
    for bf16 in (False, True):
        for width in widths:
            ms = ffn_pair_ms(width, tokens, bf16)
            results["ffn_pair_ms"][f"{width}-{'bf16' if bf16 else 'fp32'}"] = ms
            print(f"  {'bf16' if bf16 else 'fp32'} width {width:>5}: {ms:7.2f} ms ({ms / (width / 1536):.2f} ms per dense-width share)")
    save("profile_step", args.out, record, {"args": settings(args), "synthetic": record.source == "synthetic",
                                            "tokens_per_step": tokens, **results})


if __name__ == "__main__":
    main()
