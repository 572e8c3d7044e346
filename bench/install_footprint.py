"""What ``pip install ticketbert`` costs: the core and ``[all]`` installed into fresh virtual
environments (torch installed first, as the README says), with the number of distributions each
adds beyond torch, their size on disk and the install time.

    python -m bench.install_footprint [--out bench/results/install_footprint.json]

Needs network access to the package index (or a local mirror pip is configured for).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import results_path
from ticketbert.provenance import collect, data_record, write_results

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"
TARGETS = {"core": ".", "all": ".[all]"}


def distributions(python: Path) -> dict[str, str]:
    """Installed distribution -> version in the environment of ``python``."""
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                            check=True)
    return {row["name"].lower(): row["version"] for row in json.loads(listed.stdout)}


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2 ** 20


def footprint(target: str, workdir: Path) -> dict:
    """A fresh venv with torch, then ``pip install <checkout><target>`` (non-editable)."""
    env = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", TORCH], check=True)
    before, size_before = distributions(python), size_mb(env)
    began = time.perf_counter()
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"{ROOT}{target.removeprefix('.')}"], check=True)
    seconds = time.perf_counter() - began
    after = distributions(python)
    added = sorted(set(after) - set(before) - {"ticketbert"})
    return {"target": f"ticketbert{target.removeprefix('.')}", "install_seconds": round(seconds, 1),
            "distributions_beyond_torch": len(added), "added": {name: after[name] for name in added},
            "added_mb": round(size_mb(env) - size_before, 1), "torch_env_mb": round(size_before, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.install_footprint", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="results file (default: a new file under bench/runs/)")
    args = parser.parse_args(argv)
    rows = []
    for name, target in TARGETS.items():
        with tempfile.TemporaryDirectory() as workdir:
            rows.append(footprint(target, Path(workdir)))
        row = rows[-1]
        print(f"{row['target']}: {row['distributions_beyond_torch']} distributions beyond torch, "
              f"{row['added_mb']:.0f} MB, {row['install_seconds']:.0f} s")
    provenance = collect(data_record(None, "none", None, []), threads="n/a")
    path = write_results(results_path("install_footprint", args.out), provenance, {"installs": rows})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
