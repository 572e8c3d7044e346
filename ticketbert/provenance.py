"""Where a results file's numbers come from: the command, the data and its fingerprint, package
versions, hardware and threads. Torch-free (standard library only): benches, analyses and the
documentation's pages generator share it."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("ticketbert", "torch", "transformers", "accelerate", "numpy", "scipy", "mlflow", "ray")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class DataRecord:
    """The data a run read. ``requested`` is what it was asked for (a directory, or None for the
    default); ``source`` what it read (csv, sample, hub, synthetic; MLflow runs for an analysis);
    ``substituted`` says why it read other data than asked, or is None; ``files`` maps each thing
    read (a file; a run) to its hash (a file's sha256; a run's data fingerprint)."""

    requested: str | None
    source: str
    directory: str | None
    files: dict[str, str] = field(default_factory=dict)
    substituted: str | None = None

    @property
    def fingerprint(self) -> str:
        """One sha256 over the files' names and hashes (the source alone when no file was read)."""
        text = ";".join(f"{name}={digest}" for name, digest in sorted(self.files.items())) or self.source
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Provenance:
    """What produced a results file."""

    command: str
    data: DataRecord
    packages: dict[str, str]
    hardware: dict[str, Any]
    threads: int | str
    created: str

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["data"]["fingerprint"] = self.data.fingerprint
        return record


def sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_record(requested: str | None, source: str, directory: Path | None, files: list[Path],
                substituted: str | None = None) -> DataRecord:
    """A :class:`DataRecord` with the sha256 of every file in ``files``."""
    return DataRecord(requested, source, str(directory) if directory else None,
                      {path.name: sha256(path) for path in sorted(files)}, substituted)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``not installed`` for a missing one)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` says)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    """The first CUDA device's name when torch is already imported and sees one, else None."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return None


def hardware() -> dict[str, Any]:
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpu_name(), "system": platform.system()}


def program_name(path: str) -> str:
    """How ``argv[0]`` was started: ``-m package.module`` for a module of a package (``python -m``
    puts the file's path there), else the script's path."""
    file = Path(path)
    if file.name == "__main__.py":
        return f"-m {file.parent.name}"
    if (file.parent / "__init__.py").is_file():
        return f"-m {file.parent.name}.{file.stem}"
    return shlex.quote(path)


def collect(data: DataRecord, threads: int | str, argv: list[str] | None = None) -> Provenance:
    """The provenance of a run started with ``argv`` (default: this process's command line)."""
    argv = list(sys.argv if argv is None else argv)
    program = program_name(argv[0])
    command = " ".join(["python", program, shlex.join(argv[1:])]).rstrip()
    return Provenance(command=command, data=data, packages=package_versions(),
                      hardware=hardware(), threads=threads, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def write_results(path: Path, provenance: Provenance, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with its ``provenance`` block to ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"provenance": provenance.to_dict(), **payload}, indent=2) + "\n")
    return path


def announce(data: DataRecord) -> None:
    """One line saying which data the bench reads; a substitution is said loudly."""
    where = f"{data.source} ({data.directory})" if data.directory else data.source
    print(f"data: {where}, fingerprint {data.fingerprint}", flush=True)
    if data.substituted:
        print(f"WARNING: not the data asked for: {data.substituted}", flush=True)
