"""Memory of the layer-wise calibration loop for MiniLM and BERT-base shapes: the captured
first-layer inputs (and the layer arguments they share) of N calibration sequences, one layer's
input statistics per method (Wanda: per-feature norms; SparseGPT: H per Linear), one batch's
activations inside a layer while it re-runs (attention scores, FFN intermediate, output), and
SparseGPT's working memory on its widest matrix (the damped H, its Cholesky factor, the inverse
and its upper factor alive at once, plus the weight copy, its error block and mask). The
SparseGPT total is the sum of these parts (what the loop holds at its peak), not a sampled
process peak.

    python -m bench.oneshot_memory --sequences 512 --length 128 --out bench/results/oneshot_memory.json

The capture is measured on a one-layer model of each shape (its capture pass runs the
embeddings only; in the BERT layout every layer receives the same mask tensor, so more layers
add no captured bytes); the statistics are allocated for one layer of the full shape.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from transformers import BertConfig, BertModel

from bench.common import add_output_arguments, save, settings
from ticketbert.models.compute import prunable_linears
from ticketbert.models.families import find_encoder
from ticketbert.pruning.oneshot import InputStats, default_forward
from ticketbert.pruning.oneshot.loop import capture_inputs, captured_bytes
from ticketbert.provenance import DataRecord

SHAPES = {"minilm": dict(hidden_size=384, intermediate_size=1536, num_attention_heads=12),
          "bert-base": dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12)}
MIB = 2 ** 20


def measure(shape: dict[str, int], sequences: int, length: int, batch_size: int) -> dict[str, Any]:
    model = BertModel(BertConfig(num_hidden_layers=1, **shape), add_pooling_layer=False).eval()
    batches = []
    for start in range(0, sequences, batch_size):
        rows = min(batch_size, sequences - start)
        mask = torch.ones(rows, length, dtype=torch.long)
        mask[0, -1] = 0  # one padded row: the layers get a materialised attention mask, as real batches do
        batches.append({"input_ids": torch.randint(1000, 2000, (rows, length)), "attention_mask": mask})
    with torch.no_grad():
        captured = capture_inputs(find_encoder(model), model, batches, default_forward)
    linears = prunable_linears(model)
    stats = {gram: sum(InputStats.empty(m.in_features, gram).nbytes for m in linears.values()) for gram in (False, True)}
    activations = captured_bytes(captured)
    tokens, hidden = batch_size * length, shape["hidden_size"]
    # one batch through one layer: attention probabilities (and scores), FFN intermediate, output
    rerun = 4 * (2 * batch_size * shape["num_attention_heads"] * length ** 2 + tokens * shape["intermediate_size"]
                 + 2 * tokens * hidden)
    solver = max(4 * (4 * m.in_features ** 2 + m.out_features * m.in_features + m.out_features * min(128, m.in_features))
                 + m.out_features * m.in_features for m in linears.values())
    return {"captured_mib": activations / MIB, "wanda_stats_mib": stats[False] / MIB,
            "sparsegpt_stats_mib": stats[True] / MIB, "rerun_batch_mib": rerun / MIB,
            "sparsegpt_solver_mib": solver / MIB,
            "sparsegpt_total_mib": (activations + stats[True] + rerun + solver) / MIB}


def main(argv: list[str] | None = None) -> int:
    """Captured activations and statistics per model shape; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m bench.oneshot_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=512)
    parser.add_argument("--length", type=int, default=128, help="tokens per sequence")
    parser.add_argument("--batch-size", type=int, default=32)
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    rows = {name: measure(shape, args.sequences, args.length, args.batch_size) for name, shape in SHAPES.items()}
    columns = list(next(iter(rows.values())))
    print("| model | " + " | ".join(columns) + " |\n|" + "---|" * (len(columns) + 1))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.1f}" for c in columns) + " |")
    save("oneshot_memory", args.out, DataRecord(None, "random token ids (seeded)", None),
         {"settings": settings(args), "models": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
