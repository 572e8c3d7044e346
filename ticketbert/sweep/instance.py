"""One sweep's identity: a digest of its settings and data, and one folder per start.

A sweep started without ``--resume`` is a new instance (``<digest>-<start time>``) with its own
Tune state, dense models, run folders and MLflow runs, so it can never reopen, overwrite or
append to another sweep's, whatever their names, data or settings. ``--resume`` reopens the
latest instance with the same digest, and only that.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketbert.config import ConfigError
from ticketbert.data import data_fingerprint
from ticketbert.sweep.config import SweepConfig


def sweep_digest(config: SweepConfig, base: dict[str, Any]) -> str:
    """Hash of what defines a sweep's results: the resolved base run config (tracking aside), the
    grid, the search and the fingerprint of the data (file hashes or synthetic settings)."""
    settings = {"base": {k: v for k, v in base.items() if k != "tracking"},
                "grid": config.grid.model_dump(mode="json"),
                "search": config.search.model_dump(mode="json") if config.search else None,
                "data": data_fingerprint(config.base.data, config.definitions())}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class SweepInstance:
    """Where one start of a sweep keeps its files, and the keys of its MLflow runs."""

    name: str
    root: Path  # <storage>/<name>/<digest>-<start time>

    @property
    def instance(self) -> str:
        return self.root.name

    @property
    def tune_dir(self) -> Path:
        return self.root / "tune"

    @property
    def dense_dir(self) -> Path:
        return self.root / "dense"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def parent_key(self) -> str:
        return f"sweep:{self.name}:{self.instance}"

    def trial_key(self, run_name: str) -> str:
        """The MLflow run key prefix of a trial (the trial adds its run config's digest)."""
        return f"{self.name}:{self.instance}:{run_name}"


def open_instance(config: SweepConfig, base: dict[str, Any], resume: bool) -> SweepInstance:
    """A new instance of the sweep, or with ``resume`` the latest one with the same digest."""
    folder = config.storage.resolve() / config.name
    digest = sweep_digest(config, base)
    if resume:
        earlier = sorted(p for p in folder.glob(f"{digest}-*") if (p / "tune").is_dir())
        if not earlier:
            others = sorted(p.name for p in folder.glob("*-*") if p.is_dir()) if folder.is_dir() else []
            raise ConfigError(f"--resume: no sweep {config.name!r} with these settings and data in {folder}"
                              + (f" (it holds {', '.join(others)}: other settings or data)" if others else ""))
        return SweepInstance(config.name, earlier[-1])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root, n = folder / f"{digest}-{stamp}", 1
    while root.exists():
        n += 1
        root = folder / f"{digest}-{stamp}-{n}"
    root.mkdir(parents=True)
    return SweepInstance(config.name, root)
