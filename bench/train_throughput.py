"""Tokens/s of a MiniLM training step with dynamic padding + length grouping versus fixed
max-length padding, in fp32 and (where the device computes it natively) bf16 autocast, and the
step's model FLOP/s as a fraction of a large dense matmul's in the same precision; the same
steps with 30% of the prunable weights removed as FFN neurons (what pruning during training
buys per step); and the fused AdamW step of the training loop against torch's per-tensor one.

    python -m bench.train_throughput [--steps 12] [--batch 32] [--max-length 128]
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import bench_data, matmul_flops_per_second, save
from ticketbert.config import ModelConfig, TrainConfig
from ticketbert.data import collate, length_grouped_batches
from ticketbert.models import build_model
from ticketbert.models.compute import attention_flops_per_token, linear_flops_per_token
from ticketbert.pruning import prune
from ticketbert.training.device import autocast, native_bf16, select_device
from ticketbert.training.loop import build_optimizer


def pad_to(batch, width: int, pad_id: int):
    """The same batch padded to a fixed ``width`` (what a static-shape pipeline does)."""
    extra = width - batch.input_ids.shape[1]
    pad = lambda t, v: torch.nn.functional.pad(t, (0, extra), value=v)  # noqa: E731
    return type(batch)(pad(batch.input_ids, pad_id), pad(batch.attention_mask, 0), pad(batch.token_type_ids, 0),
                       batch.labels, batch.segments)


def run(batches, model, task, device, bf16: bool) -> dict[str, float]:
    optimizer = build_optimizer(model, TrainConfig(lr=1e-5))
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
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    data, tokenizer, synthetic = bench_data(["sst"], [f"data.max_length={args.max_length}"])
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
        model = build_model(ModelConfig(), ["sst"]).to(device).train()
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
          + (" (SYNTHETIC data)" if synthetic else " (real SST train)"))
    print(", ".join(f"dense {'bf16' if bf16 else 'fp32'} matmul 2048^3: {peak / 1e9:.1f} GFLOP/s"
                    for bf16, peak in peaks.items()))
    print(f"{'variant':<26} {'tokens/s':>10} {'vs fixed':>9} {'model GFLOP/s':>14} {'of matmul':>10}")
    for name, r in results.items():
        print(f"{name:<26} {r['tokens_per_s']:>10.0f} {r['tokens_per_s'] / base:>8.2f}x "
              f"{r['model_flops_per_s'] / 1e9:>14.1f} {r['model_flops_per_s'] / peaks[r['bf16']]:>9.1%}")
    optimizer_ms = optimizer_step_ms(device)
    print("AdamW step on MiniLM: " + ", ".join(f"{k} {v:.1f} ms" for k, v in optimizer_ms.items()))
    save("train_throughput", {"args": vars(args), "synthetic": synthetic,
                              "matmul_flops_per_s": {"bf16" if k else "fp32": v for k, v in peaks.items()},
                              "results": results, "optimizer_step_ms": optimizer_ms})


def optimizer_step_ms(device, repeats: int = 20) -> dict[str, float]:
    """Median time of one AdamW step over MiniLM's parameters: the loop's fused optimizer and
    torch's default (per-tensor) implementation, on the same gradients."""
    model = build_model(ModelConfig(), ["sst"]).to(device)
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
