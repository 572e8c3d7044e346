"""The README's library examples run as written (each python block after a readme-test marker)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MARKED = re.compile(r"<!-- readme-test -->\s*```python\n(.*?)```", re.DOTALL)
EXAMPLES = MARKED.findall(README.read_text())


def test_the_readme_has_its_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("code", EXAMPLES, ids=[f"example-{i + 1}" for i in range(len(EXAMPLES))])
def test_readme_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README example in {tmp_path}", "exec"), {"__name__": "readme_example"})
