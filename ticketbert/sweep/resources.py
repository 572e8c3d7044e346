"""What each trial asks Ray for, sized from the hardware so that no request can hang."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

from ticketbert.sweep.config import ResourcesConfig, SweepConfig
from ticketbert.sweep.records import GridPoint


@dataclass
class TrialResources:
    cpu: float
    gpu: float
    max_concurrent: int

    def as_dict(self) -> dict[str, float]:
        return {"cpu": self.cpu, "gpu": self.gpu}


def local_hardware() -> tuple[float, float]:
    """(CPUs, GPUs) of this machine; torch is imported only where a GPU device node exists."""
    cpus = float(os.cpu_count() or 1)
    if not glob.glob("/dev/nvidia[0-9]*") and not os.path.exists("/dev/kfd"):
        return cpus, 0.0
    import torch

    return cpus, float(torch.cuda.device_count() if torch.cuda.is_available() else 0)


def cluster_hardware() -> tuple[float, float]:
    """(CPUs, GPUs) of the Ray cluster this process is connected to."""
    import ray

    total = ray.cluster_resources()
    return float(total.get("CPU", 0)), float(total.get("GPU", 0))


def plan_resources(config: ResourcesConfig, hardware: tuple[float, float] | None = None) -> TrialResources:
    """Per-trial resources on ``hardware`` (CPUs, GPUs; default this machine): a fraction of a
    GPU when GPUs exist (``trials_per_gpu`` share one), CPUs otherwise. A request the hardware
    cannot meet is a clear error, not a silent hang."""
    cpus, gpus = hardware or local_hardware()
    if config.cpus_per_trial > cpus:
        raise ValueError(f"resources.cpus_per_trial={config.cpus_per_trial:g} but the cluster has {cpus:g} CPUs")
    gpu = config.gpus_per_trial
    if gpu == "auto":
        gpu = 1.0 / config.trials_per_gpu if gpus > 0 else 0.0
    if gpu > 0 and gpus == 0:
        raise ValueError(f"resources.gpus_per_trial={gpu:g} but the cluster has no GPU (set it to 0 or 'auto')")
    if gpu > gpus:
        raise ValueError(f"resources.gpus_per_trial={gpu:g} but the cluster has {gpus:g} GPUs")
    by_cpu = int(cpus // config.cpus_per_trial)
    by_gpu = int(gpus // gpu) if gpu > 0 else by_cpu
    concurrent = min(by_cpu, by_gpu)
    if config.max_concurrent_trials is not None:
        concurrent = min(concurrent, config.max_concurrent_trials)
    return TrialResources(config.cpus_per_trial, gpu, max(concurrent, 1))


def structured_limits(config: SweepConfig) -> tuple[list[GridPoint], list[str]]:
    """The grid points whose sparsity the method can reach on the base encoder, and a note
    for every point left out (all heads are about a third of a BERT layer's weights). The
    encoder is built on the meta device: shapes only, no weights loaded."""
    import torch
    from transformers import AutoConfig, AutoModel

    from ticketbert.models import resolve_encoder
    from ticketbert.pruning.api import method_limit
    from ticketbert.pruning.methods import is_dense

    with torch.device("meta"):
        encoder = AutoModel.from_config(AutoConfig.from_pretrained(resolve_encoder(config.base.model.encoder)))
    points = config.trials()
    limits = {method: 1.0 if is_dense(method) else method_limit(encoder, method)
              for method in {point.method for point in points}}
    kept, notes = [], []
    for point in points:
        if point.sparsity > limits[point.method] + 1e-9:
            notes.append(f"skipped {point.task}/{point.method}@{point.sparsity:g}: "
                         f"{point.method} reaches at most {limits[point.method]:.1%}")
        else:
            kept.append(point)
    return kept, notes
