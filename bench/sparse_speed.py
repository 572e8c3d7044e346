"""Does sparsity make a Linear faster? CPU: CSR sparse matmul against dense at 50-90%
unstructured sparsity; GPU (CUDA, compute capability 8.0+): 2:4 weights through
``torch.sparse.to_sparse_semi_structured`` in fp16/bf16 against dense. Matrix shapes are
MiniLM's and BERT-base's attention and FFN Linears, applied to ``--tokens`` tokens.

    python -m bench.sparse_speed --tokens 2048 --out bench/results/sparse_speed.json

``--skip-cpu`` times the GPU part alone (the CPU part takes a minute or more on a many-core host).
Prints markdown tables and writes a results file with its provenance (the command, versions,
hardware and thread count): ``--out``, else a new file under ``bench/runs/``.
"""

from __future__ import annotations

import argparse
import warnings
from typing import Any

import torch
import torch.nn.functional as F

from bench.common import add_output_arguments, save, settings
from ticketbert.provenance import DataRecord
from ticketbert.models.compute import measure_latency
from ticketbert.pruning.nm_pattern import NMPattern
from ticketbert.pruning.oneshot.patterns import nm_keep, smallest

SHAPES = {  # (out_features, in_features) of a layer's Linears
    "minilm": {"attention": (384, 384), "ffn_in": (1536, 384), "ffn_out": (384, 1536)},
    "bert-base": {"attention": (768, 768), "ffn_in": (3072, 768), "ffn_out": (768, 3072)},
}
LEVELS = [0.5, 0.6, 0.7, 0.8, 0.9]
RANDOM_DATA = DataRecord(None, "random weights and inputs (seeded)", None)


def pruned_weight(shape: tuple[int, int], sparsity: float, seed: int, dtype=torch.float32, device="cpu",
                  pattern: NMPattern | None = None) -> torch.Tensor:
    """A random weight with its smallest-magnitude share zeroed (or N:M per row group)."""
    weight = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    keep = nm_keep(weight.abs(), pattern) if pattern else smallest(weight.abs(), round(sparsity * weight.numel()))
    return (weight * keep).to(device=device, dtype=dtype)


def cpu_rows(tokens: int, repeats: int) -> list[dict[str, Any]]:
    """Median ms of dense ``x W^T`` and CSR ``W x^T`` per model, matrix and sparsity."""
    rows = []
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    for model, shapes in SHAPES.items():
        for matrix, shape in shapes.items():
            x = torch.randn(tokens, shape[1], generator=torch.Generator().manual_seed(1))
            xt = x.T.contiguous()
            for level in LEVELS:
                weight = pruned_weight(shape, level, seed=0)
                csr = weight.to_sparse_csr()
                torch.testing.assert_close(torch.sparse.mm(csr, xt).T, F.linear(x, weight), rtol=1e-4, atol=1e-3)
                dense_ms, sparse_ms = measure_latency([lambda: F.linear(x, weight), lambda: torch.sparse.mm(csr, xt)],
                                                      torch.device("cpu"), repeats=repeats)
                rows.append({"model": model, "matrix": matrix, "shape": list(shape), "sparsity": level,
                             "dense_ms": dense_ms, "csr_ms": sparse_ms, "speedup": dense_ms / sparse_ms})
    return rows


def gpu_rows(tokens: int, repeats: int) -> dict[str, Any]:
    """2:4 semi-structured against dense on the GPU, or why that part was skipped."""
    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device"}
    capability = torch.cuda.get_device_capability()
    if capability < (8, 0):
        return {"skipped": f"compute capability {capability[0]}.{capability[1]} < 8.0"}
    from torch.sparse import to_sparse_semi_structured

    device, rows = torch.device("cuda"), []
    for dtype in (torch.float16, torch.bfloat16):
        for model, shapes in SHAPES.items():
            for matrix, shape in shapes.items():
                x = torch.randn(tokens, shape[1], device=device, dtype=dtype)
                weight = pruned_weight(shape, 0.5, seed=0, dtype=dtype, device=device, pattern=NMPattern(2, 4))
                sparse = to_sparse_semi_structured(weight)
                torch.testing.assert_close(F.linear(x, sparse), F.linear(x, weight), rtol=2e-2, atol=2e-1)
                dense_ms, sparse_ms = measure_latency([lambda: F.linear(x, weight), lambda: F.linear(x, sparse)],
                                                      device, repeats=repeats)
                rows.append({"dtype": str(dtype).removeprefix("torch."), "model": model, "matrix": matrix,
                             "shape": list(shape), "dense_ms": dense_ms, "semi_structured_ms": sparse_ms,
                             "speedup": dense_ms / sparse_ms})
    return {"device": torch.cuda.get_device_name(0), "capability": list(capability), "rows": rows}


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c])
                                        for c in columns) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CPU CSR and GPU 2:4 latency against dense; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.sparse_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2048, help="tokens per matmul (batch x sequence length)")
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats per call (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--skip-cpu", action="store_true", help="leave out the CPU CSR part (the GPU part alone)")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu: list[dict[str, Any]] | dict[str, str] = {"skipped": "--skip-cpu"}
    if not args.skip_cpu:
        cpu = cpu_rows(args.tokens, args.repeats)
        print(table(cpu, ["model", "matrix", "sparsity", "dense_ms", "csr_ms", "speedup"]))
    gpu = gpu_rows(args.tokens, args.repeats)
    if "rows" in gpu:
        print(table(gpu["rows"], ["dtype", "model", "matrix", "dense_ms", "semi_structured_ms", "speedup"]))
    else:
        print(f"GPU 2:4 part skipped: {gpu['skipped']}")
    save("sparse_speed", args.out, RANDOM_DATA, {"settings": settings(args), "tokens": args.tokens, "cpu": cpu,
                                                 "gpu": gpu})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
