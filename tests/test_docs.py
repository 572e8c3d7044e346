"""The documentation site's generated pages are current and its navigation is complete."""

import importlib.util
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def generator():
    spec = importlib.util.spec_from_file_location("gen_config_reference", DOCS / "gen_config_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [page for value in node.values() for page in nav_pages(value)]
    return [page for item in node for page in nav_pages(item)]


def test_config_reference_is_what_the_models_generate():
    module = generator()
    assert module.PAGE.read_text() == module.render(), "run python docs/gen_config_reference.py"


def test_every_config_field_is_listed_and_described():
    from ticketbert.config import RunConfig
    from ticketbert.sweep.config import SweepConfig

    text = generator().render()
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| `")]
    assert all(row[-1].strip(" |") for row in rows), [row[0] for row in rows if not row[-1].strip(" |")]
    fields = {row[0].strip("| `") for row in rows}
    assert {f"prune.{name}" for name in RunConfig.model_fields["prune"].annotation.model_fields} <= fields
    assert {f"grid.{name}" for name in SweepConfig.model_fields["grid"].annotation.model_fields} <= fields
    assert "| `train.lr` | float | `2e-05` | > 0.0, <= 1.0 |" in text


def test_every_page_is_in_the_navigation_and_every_link_resolves():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = set(nav_pages(config["nav"]))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert nav == pages
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+\.(?:md|png))(?:#[^)]*)?\)", (DOCS / page).read_text()):
            assert (DOCS / page).parent.joinpath(target).resolve().is_file(), f"{page}: {target}"


def test_readme_stays_short_and_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (ROOT / target).is_file(), target
