"""The Ray Tune trainable: a grid point -> a run config -> ``ticketbert.run.run_training``."""

from __future__ import annotations

import ctypes
import gc
import socket
import sys
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from ticketbert.config import RunConfig, merge, validate
from ticketbert.run import config_digest, run_dir, run_training


class TuneReporter:
    """Sends every epoch's metrics to Tune (the loop's Logger protocol). Step-level diagnostics
    without the run's metric (mask distances, the ticket's figures, the dense point) go to
    MLflow only: Tune checks every report for the metric its searcher optimises."""

    metric = "dev/overall"

    def log_dict(self, payload: dict[str, float], step: int) -> None:
        if self.metric in payload:
            tune.report({**payload, "epoch": step})


def trial_config(params: dict[str, Any], searched: dict[str, Any]) -> RunConfig:
    """The run config of one trial: the sweep's base, the grid point, searched values
    (keys are dotted paths written with ``__``, e.g. ``train__lr``)."""
    raw = merge(params["base"], params.get("overrides", {}))
    for key, value in searched.items():
        raw = merge(raw, _nest(key.replace("__", "."), value))
    return validate(RunConfig, raw, f"trial {params.get('label', '')}")


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    node: dict[str, Any] = {}
    parts = dotted.split(".")
    cursor = node
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return node


def trial_device() -> str:
    """The device Ray gave this trial: its GPU (CUDA_VISIBLE_DEVICES is set by Ray) or the CPU."""
    return "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"


def node_tags() -> dict[str, str]:
    """Where this attempt of the trial runs: Ray node id, its IP address and the host name."""
    return {"ray_node_id": ray.get_runtime_context().get_node_id(), "ray_node_ip": ray.util.get_node_ip_address(),
            "hostname": socket.gethostname()}


def release_memory() -> None:
    """Hand a finished trial's memory back as the reused actor starts the next one: collect
    garbage and, on glibc, trim the malloc arenas. With two arenas per worker
    (``tune.runner.WORKER_ENV``) this kept the study's actors at 1.3-2.0 GB; without both they
    grew ~1 GB a minute until Ray's memory monitor killed one."""
    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (musl): nothing to trim
            pass


def train_trial(space: dict[str, Any]) -> None:
    """Run one trial. Its MLflow run is keyed by the sweep instance, the grid point and the
    digest of its resolved run config and data, so a retried or restored trial of the same
    sweep reopens its run and resumes from its last epoch checkpoint, and nothing else does.
    Its final result names its run folder (``run_dir``), whose training checkpoints the sweep
    deletes once the trial is complete (``tune.cleanup.CheckpointCleanup``)."""
    release_memory()  # the previous trial's leftovers; not after the run, which the final report must follow at once
    params, searched = space["trial"], space.get("searched", {})
    config = trial_config(params, searched)
    config.train.device = trial_device()
    config.train.progress = False
    torch.set_num_threads(max(1, int(params.get("cpus", 1))))
    run_key = f"{params['run_key']}:{config_digest(config)}"
    if searched:
        run_key += ":" + ",".join(f"{k}={v}" for k, v in sorted(searched.items()))
    result = run_training(config, run_key=run_key, parent_run_id=params.get("parent_run_id"),
                          tags={"sweep": params.get("sweep", ""), "stage": params.get("stage", ""), **node_tags()},
                          reporters=[TuneReporter()])
    final = {**result.metrics, "done": 1.0, "run_dir": str(run_dir(config).resolve())}
    if result.model_dir is not None:
        final["model_dir"] = str(Path(result.model_dir).resolve())
    tune.report(final)  # "done": Tune ends the trial here
