"""Shared set-up of the benchmarks: real data when present, the bundled MiniLM, results files."""

from __future__ import annotations

import json
import os
import platform
import shlex
import time
from pathlib import Path
from typing import Any

import torch

from ticketbert.config import load_config
from ticketbert.data import TaskData, warn_if_synthetic
from ticketbert.models import load_tokenizer
from ticketbert.run import encode_data, read_data

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"


def bench_data(tasks: list[str], overrides: list[str] = ()) -> tuple[dict[str, TaskData], Any, bool]:
    """Encoded data of ``tasks`` from ../shared/data ($TICKETBERT_DATA_DIR wins), else synthetic."""
    data_dir = os.environ.get("TICKETBERT_DATA_DIR") or (str(REAL_DATA) if REAL_DATA.is_dir() else None)
    settings = [f"train.tasks=[{','.join(tasks)}]", *overrides]
    if data_dir:
        settings.append(f"data.dir={data_dir}")
    config = load_config(None, settings)
    synthetic = warn_if_synthetic(config.data)
    tokenizer = load_tokenizer(config.model.encoder)
    return encode_data(config, read_data(config), tokenizer), tokenizer, synthetic


def machine() -> dict[str, Any]:
    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "date": time.strftime("%Y-%m-%d %H:%M")}


def save(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    return path


def provenance(module: str, argv: list[str]) -> dict[str, Any]:
    """What a results file records about its run: the command, library versions, the machine."""
    import transformers

    return {"command": shlex.join(["python", "-m", module, *argv]),
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "transformers": transformers.__version__},
            "machine": machine()}


def save_new(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json``, refusing to replace an existing results file."""
    path = RESULTS / f"{name}.json"
    if path.exists():
        raise FileExistsError(f"{path} exists: results files are not overwritten; choose another --out name")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    return path


def matmul_flops_per_second(device: torch.device, size: int = 2048, repeats: int = 10,
                            dtype: torch.dtype = torch.float32) -> float:
    """The machine's practical limit: FLOP/s of a large dense matmul in ``dtype``."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    for _ in range(2):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * size**3 * repeats / (time.perf_counter() - start)
