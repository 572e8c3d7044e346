"""The product speaks of the project only: no work-process words ("session 3", "issue 9", "#12"),
no first-person narration, no run dates or clock times, no paths outside the repository, in
README.md, docs/ and the package (code, comments, docstrings, configs). Tests are exempt."""

import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ["README.md", "mkdocs.yml", "docs", "ticketbert", "tune", "analysis", "configs", "bench"]
SUFFIXES = {".md", ".py", ".yaml", ".yml", ".toml", ".txt"}

PROCESS = re.compile(r"\b(?:work )?sessions? \d+|\bissues? \d+|(?<![&\w/#])#\d+\b", re.IGNORECASE)
FIRST_PERSON = re.compile(r"\bI\b|\b(?:[Ww]e|[Mm]y|[Oo]ur|[Oo]urs|[Oo]urselves)\b")
DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")
OUTSIDE = re.compile(r"\.\./shared|/work/|(?<![\w.])/root\b|(?<![\w.])/home/")
# hh:mm[:ss] with minutes 00-59; a time when it has two-digit hours, or am/pm/UTC after it, or
# a word of time before it. "2:4", "4:8" (N:M sparsity) have one-digit "minutes" and never match;
# a two-digit N:M pattern is recognised by the word pattern/sparsity/structure before it.
CLOCK = re.compile(r"(?<![\d.:])(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::[0-5]\d)?(?![\d:])"
                   r"(?P<suffix>\s*(?:am|pm|a\.m\.|p\.m\.|UTC|GMT)\b)?", re.IGNORECASE)
TIME_WORDS = re.compile(r"\b(?:at|from|until|till|since|between|started|ended|by)\s*$", re.IGNORECASE)
PATTERN_WORDS = re.compile(r"\b(?:pattern|sparsity|structured|structure|n:m|ratio)\b[^.\n]{0,40}$", re.IGNORECASE)


def clock_times(text: str) -> list[str]:
    """The clock times in ``text`` (not N:M patterns, ratios or m:ss durations)."""
    found = []
    for match in CLOCK.finditer(text):
        before = text[max(0, match.start() - 60):match.start()]
        if PATTERN_WORDS.search(before):
            continue
        two_digit_hour = len(match.group("h")) == 2
        if match.group("suffix") or TIME_WORDS.search(before) or two_digit_hour:
            found.append(match.group(0).strip())
    return found


def problems(text: str, prose: bool = True) -> list[str]:
    """What the house rules forbid in ``text``; first person only when ``prose``."""
    found = [f"process word {m.group(0)!r}" for m in PROCESS.finditer(text)]
    if prose:
        found += [f"first person {m.group(0)!r}" for m in FIRST_PERSON.finditer(text)]
    found += [f"date {m.group(0)!r}" for m in DATE.finditer(text)]
    found += [f"clock time {t!r}" for t in clock_times(text)]
    found += [f"path outside the repository {m.group(0)!r}" for m in OUTSIDE.finditer(text)]
    return found


def markdown_prose(text: str) -> str:
    """Markdown without its fenced code blocks (examples hold data, e.g. review sentences)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def python_text(source: str) -> tuple[str, str]:
    """(comments and strings, everything): prose of a Python file and its whole text."""
    pieces = [token.string for token in tokenize.generate_tokens(io.StringIO(source).readline)
              if token.type in (tokenize.COMMENT, tokenize.STRING)]
    return "\n".join(pieces), source


def product_files() -> list[Path]:
    files = []
    for name in PRODUCT:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files += [p for p in candidates if p.suffix in SUFFIXES and "__pycache__" not in p.parts]
    return files


def file_problems(path: Path) -> list[str]:
    text = path.read_text()
    if path.suffix == ".py":
        prose, whole = python_text(text)
        return problems(prose) + [p for p in problems(whole, prose=False) if not p.startswith("first person")]
    if path.suffix == ".md":
        return problems(markdown_prose(text)) + problems(text, prose=False)
    return problems(text)


@pytest.mark.parametrize("path", product_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_product_text_follows_the_house_rules(path):
    found = sorted(set(file_problems(path)))
    assert not found, f"{path.relative_to(ROOT)}: " + "; ".join(found)


def test_the_product_is_checked():
    names = {str(p.relative_to(ROOT)) for p in product_files()}
    assert {"README.md", "ticketbert/pruning/api.py", "tune/sweep.py", "ticketbert/analysis/report.py",
            "configs/study.yaml", "bench/pages.py"} <= names
    assert not any(n.startswith("tests/") for n in names)


@pytest.mark.parametrize("text, expected", [
    ("measured in session 4 on the study", "process word 'session 4'"),
    ("sessions 4-5 ran it", "process word 'sessions 4'"),
    ("as issue 9 asks", "process word 'issue 9'"),
    ("fixed in #12.", "process word '#12'"),
    ("I stopped the server", "first person 'I'"),
    ("We measured it today", "first person 'We'"),
    ("our seed spread", "first person 'our'"),
    ("a test run of mine; my script", "first person 'my'"),
    ("run on 2026-11-25", "date '2026-11-25'"),
    ("between 03:21-03:55 UTC", "clock time '03:21'"),
    ("the run ended 13:05", "clock time '13:05'"),
    ("started at 3:41 pm", "clock time '3:41 pm'"),
    ("at 9:05 it stopped", "clock time '9:05'"),
    ("data in ../shared/data", "path outside the repository '../shared'"),
    ("sqlite:////work/study/mlruns", "path outside the repository '/work/'"),
    ("cache in /root/.cache", "path outside the repository '/root'"),
    ("clone into /home/user/x", "path outside the repository '/home/'"),
])
def test_detector_finds(text, expected):
    assert expected in problems(text)


@pytest.mark.parametrize("text", [
    "a 2:4 sparsity pattern", "N:M patterns such as 4:8 and 1:4", "the 2:4 and 4:8 structured masks",
    "semi-structured sparsity, pattern 16:32", "a 1:40 elapsed, ETA 1:07 progress line",
    "http://127.0.0.1:5000/#/experiments/1/runs", "ray start --address HEAD:6379", "x[1:32] slices",
    "issues are one-line errors", "a session of Ray", "the heading\n# 12 steps", "#/experiments/1",
    "colour &#124; entity", "my_model = load()", "our_weights", "version 2026.1",
    "sqlite:///mlruns/mlflow.db", "/proc/cpuinfo", "./home/x", "docs/results/2026-plan.md",
])
def test_detector_leaves_alone(text):
    assert problems(text) == []
