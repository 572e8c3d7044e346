"""The bundled real-data sample: small, pinned, reproducible, packaged, and the default data."""

import hashlib
import tomllib
import warnings
from fnmatch import fnmatch
from pathlib import Path

import pytest

from conftest import REAL_DATA
from ticketbert.config import DataConfig
from ticketbert.data import SAMPLE_DIR, read_task, resolve_source
from ticketbert.data.make_sample import FILES, main as make_sample
from ticketbert.tasks import shipped_definitions

ROOT = Path(__file__).resolve().parents[1]


def sha256sums(path: Path) -> dict[str, str]:
    return {name: digest for digest, name in (line.split() for line in path.read_text().splitlines())}


def test_sample_is_small_pinned_and_packaged():
    files = sorted(p.name for p in SAMPLE_DIR.glob("*.csv"))
    assert files == sorted(FILES)
    assert sum((SAMPLE_DIR / f).stat().st_size for f in files) < 1_000_000
    pinned = sha256sums(SAMPLE_DIR / "SHA256SUMS")
    assert {f: hashlib.sha256((SAMPLE_DIR / f).read_bytes()).hexdigest() for f in files} == pinned
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ticketbert.data"]
    for path in SAMPLE_DIR.iterdir():  # every file of the sample ships in the wheel
        assert any(fnmatch(f"sample/{path.name}", pattern) for pattern in patterns), path.name


def test_sample_is_the_default_and_reads_with_its_real_defects(monkeypatch):
    monkeypatch.delenv("TICKETBERT_DATA_DIR", raising=False)
    assert resolve_source(DataConfig()).source == "sample"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sizes = {name: read_task(DataConfig(), name, shipped_definitions()[name]) for name in ("sst", "para", "sts")}
    assert {name: (len(raw.train), len(raw.dev)) for name, raw in sizes.items()} == {
        "sst": (1200, 400), "para": (1200, 400), "sts": (1200, 400)}
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "quora-train.csv: skipped 2 malformed row(s)" in messages[0]


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason="../shared/data not present")
def test_sample_is_reproduced_from_the_originals_named_in_its_readme(tmp_path):
    originals = sha256sums(REAL_DATA / "SHA256SUMS")
    readme = (SAMPLE_DIR / "README.md").read_text()
    assert all(digest in readme for name, digest in originals.items() if name in FILES)
    assert make_sample([str(REAL_DATA), str(tmp_path), "--seed", "224", "--train", "1200", "--dev", "400"]) == 0
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SAMPLE_DIR / name).read_bytes(), name
