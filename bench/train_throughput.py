"""Tokens/s of a MiniLM training step with dynamic padding + length grouping versus fixed
max-length padding, in fp32 and (where the device computes it natively) bf16 autocast, and the
step's model FLOP/s as a fraction of a large dense matmul's in the same precision; the fused
AdamW step of the training loop against torch's per-tensor one; and what pruning buys per
train step: the step time of models pruned 30% and 50% (FFN neurons by ``l1``;
heads+FFN by ``fisher`` on 128 calibration examples, widths rounded to 64) against the dense
model's, as a share of their FLOP-count speedup, in the fastest precision, all models timed in
interleaved rounds in one process (the fastest round of each), for both attention kernels
(torch's SDPA, transformers' eager attention).

    python -m bench.train_throughput [--steps 12] [--batch 32] [--max-length 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import add_output_arguments, bench_data, matmul_flops_per_second, save, settings
from ticketbert.config import ModelConfig, TrainConfig
from ticketbert.data import collate, length_grouped_batches
from ticketbert.tasks.model import build_model
from ticketbert.models.compute import attention_flops_per_token, linear_flops_per_token
from ticketbert.pruning import make_calibration, needs_data, prune
from ticketbert.pruning.methods import describe
from ticketbert.training.device import autocast, native_bf16, select_device
from ticketbert.training.loop import build_optimizer


def pad_to(batch, width: int, pad_id: int):
    """The same batch padded to a fixed ``width`` (what a static-shape pipeline does)."""
    extra = width - batch.input_ids.shape[1]
    pad = lambda t, v: torch.nn.functional.pad(t, (0, extra), value=v)  # noqa: E731
    return type(batch)(pad(batch.input_ids, pad_id), pad(batch.attention_mask, 0), pad(batch.token_type_ids, 0),
                       batch.labels, batch.segments)


def run(batches, model, task, device, bf16: bool, optimizer=None) -> dict[str, float]:
    """Train steps over ``batches`` (the first a warm-up): real tokens/s, model FLOP/s, seconds."""
    optimizer = optimizer or build_optimizer(model, TrainConfig(lr=1e-5))
    encoder = model.encoder
    linear = linear_flops_per_token(encoder)
    real_tokens, flops, elapsed = 0, 0.0, 0.0
    for i, batch in enumerate(batches):
        batch = batch.to(device)
        start = time.perf_counter()
        with autocast(device, bf16):
            loss = task.loss(model(task.name, batch), batch.labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i == 0:
            continue  # warm-up step
        elapsed += time.perf_counter() - start
        real_tokens += batch.tokens
        width = batch.input_ids.shape[1]
        flops += 3 * batch.input_ids.numel() * (linear + attention_flops_per_token(encoder, width))
    return {"tokens_per_s": real_tokens / elapsed, "model_flops_per_s": flops / elapsed, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.train_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    add_output_arguments(parser)
    args = parser.parse_args()
    data, tokenizer, record = bench_data(["sst"], args.data_dir, [f"data.max_length={args.max_length}"])
    synthetic = record.source == "synthetic"
    sst = data["sst"]
    device = select_device("auto")
    generator = torch.Generator().manual_seed(0)
    grouped = length_grouped_batches(sst.train.lengths, args.batch, generator)[: args.steps + 1]
    shuffled = torch.randperm(len(sst.train), generator=generator).tolist()
    plain = [shuffled[i * args.batch:(i + 1) * args.batch] for i in range(args.steps + 1)]
    variants = [("fixed max-length padding", plain, True, False, False),
                ("dynamic + length-grouped", grouped, False, False, False),
                ("  + FFN 30% pruned", grouped, False, False, True)]
    if native_bf16(device):
        variants += [("dynamic + grouped, bf16", grouped, False, True, False),
                     ("  + FFN 30% pruned, bf16", grouped, False, True, True)]
    results = {}
    for name, index_batches, fixed, bf16, pruned in variants:
        torch.manual_seed(0)
        model = build_model(ModelConfig(), [data["sst"].task]).to(device).train()
        if pruned:
            prune(model, "ffn", 0.3, criterion="l1")
        batches = [collate(sst.train, b, tokenizer.pad_token_id) for b in index_batches]
        if fixed:
            batches = [pad_to(b, args.max_length, tokenizer.pad_token_id) for b in batches]
        results[name] = {**run(batches, model, sst.task, device, bf16), "bf16": bf16}
    peaks = {bf16: matmul_flops_per_second(device, dtype=torch.bfloat16 if bf16 else torch.float32)
             for bf16 in {r["bf16"] for r in results.values()}}
    base = results["fixed max-length padding"]["tokens_per_s"]
    print(f"device {device}, batch {args.batch}, {args.steps} timed steps, max_length {args.max_length}"
          + f" ({record.source} SST train)")
    print(", ".join(f"dense {'bf16' if bf16 else 'fp32'} matmul 2048^3: {peak / 1e9:.1f} GFLOP/s"
                    for bf16, peak in peaks.items()))
    print(f"{'variant':<26} {'tokens/s':>10} {'vs fixed':>9} {'model GFLOP/s':>14} {'of matmul':>10}")
    for name, r in results.items():
        print(f"{name:<26} {r['tokens_per_s']:>10.0f} {r['tokens_per_s'] / base:>8.2f}x "
              f"{r['model_flops_per_s'] / 1e9:>14.1f} {r['model_flops_per_s'] / peaks[r['bf16']]:>9.1%}")
    optimizer_ms = optimizer_step_ms(device, sst.task)
    print("AdamW step on MiniLM: " + ", ".join(f"{k} {v:.1f} ms" for k, v in optimizer_ms.items()))
    bf16 = native_bf16(device)
    calibration = make_calibration(data, 128, pad_id=tokenizer.pad_token_id)
    pruned = {attention: pruned_step_speedups([collate(sst.train, b, tokenizer.pad_token_id) for b in grouped],
                                              sst.task, calibration, device, bf16, attention, args.rounds)
              for attention in ("sdpa", "eager")}
    print(f"train step of pruned models vs dense ({'bf16' if bf16 else 'fp32'}, fastest of {args.rounds} "
          f"interleaved rounds of {args.steps} steps)")
    print(f"{'attention':<10} {'model':<28} {'ms/step':>8} {'speedup':>8} {'FLOPs':>7} {'of FLOPs':>9}")
    for attention, rows in pruned.items():
        for name, r in rows.items():
            print(f"{attention:<10} {name:<28} {r['ms_per_step']:>8.1f} {r['speedup']:>7.2f}x "
                  f"{r['flops_speedup']:>6.2f}x {r['speedup'] / r['flops_speedup']:>9.2f}")
    save("train_throughput", args.out, record, {"args": settings(args), "synthetic": synthetic,
                              "matmul_flops_per_s": {"bf16" if k else "fp32": v for k, v in peaks.items()},
                              "results": results, "optimizer_step_ms": optimizer_ms,
                              "pruned_step": {"bf16": bf16, **pruned}})


PRUNED_MODELS = (("dense", None, 0.0, None), ("FFN 30% (l1)", "ffn", 0.3, "l1"), ("FFN 50% (l1)", "ffn", 0.5, "l1"),
                 ("heads+FFN 30% FLOPs (fisher)", "heads+ffn", 0.3, "fisher"),
                 ("heads+FFN 50% FLOPs (fisher)", "heads+ffn", 0.5, "fisher"))


def pruned_step_speedups(batches, task, calibration, device, bf16: bool, attention: str,
                         rounds: int) -> dict[str, dict[str, float]]:
    """Train-step time of each of PRUNED_MODELS (``attention`` kernel) and its speedup over
    dense next to its FLOP-count speedup; the models take turns, the fastest round counts."""
    models = {}
    for name, method, sparsity, criterion in PRUNED_MODELS:
        torch.manual_seed(0)
        model = build_model(ModelConfig(), [task]).train()
        model.encoder.set_attn_implementation(attention)
        if method:
            options = {"round_to": 64} if describe(method).takes("round_to") else {}
            prune(model, method, sparsity, criterion=criterion,
                  data=calibration if needs_data(method, criterion) else None, **options)
        models[name] = model.to(device)
    timings = {name: [] for name in models}
    optimizers = {name: build_optimizer(model, TrainConfig(lr=1e-5)) for name, model in models.items()}
    for _ in range(rounds):
        for name, model in models.items():
            timings[name].append(run(batches, model, task, device, bf16, optimizers[name]))
    dense = min(timings["dense"], key=lambda r: r["seconds"])
    rows = {}
    for name in models:
        best = min(timings[name], key=lambda r: r["seconds"])
        step_flops = best["model_flops_per_s"] * best["seconds"]
        rows[name] = {"ms_per_step": 1000 * best["seconds"] / (len(batches) - 1),
                      "speedup": dense["seconds"] / best["seconds"],
                      "flops_speedup": dense["model_flops_per_s"] * dense["seconds"] / step_flops}
    return rows


def optimizer_step_ms(device, task, repeats: int = 20) -> dict[str, float]:
    """Median time of one AdamW step over MiniLM's parameters: the loop's fused optimizer and
    torch's default (per-tensor) implementation, on the same gradients."""
    model = build_model(ModelConfig(), [task]).to(device)
    for param in model.parameters():
        param.grad = torch.randn_like(param)
    optimizers = {"fused (build_optimizer)": build_optimizer(model, TrainConfig()),
                  "per-tensor (torch default)": torch.optim.AdamW(model.parameters(), foreach=False)}
    timings = {}
    for name, optimizer in optimizers.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        timings[name] = 1000 * sorted(times)[repeats // 2]
    return timings


if __name__ == "__main__":
    main()
