"""The README's and the documentation's examples run as written (each python block after a
readme-test marker)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKED = re.compile(r"<!-- readme-test -->\s*```python\n(.*?)```", re.DOTALL)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXAMPLES = [(str(page.relative_to(ROOT)), code) for page in PAGES for code in MARKED.findall(page.read_text())]


def test_the_readme_and_the_guides_have_their_examples():
    pages = [page for page, _ in EXAMPLES]
    assert pages.count("README.md") >= 2
    assert {"docs/guides/pruning.md", "docs/guides/early-bird.md"} <= set(pages)


@pytest.mark.parametrize("page, code", EXAMPLES, ids=[f"{page}-{i + 1}" for i, (page, _) in enumerate(EXAMPLES)])
def test_readme_example_runs(page, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"example from {page} in {tmp_path}", "exec"), {"__name__": "readme_example"})
