"""``python docs/gen_config_reference.py``: writes ``docs/reference/config.md``, every field of the
run config and the sweep config with its type, default, bounds and description, from the pydantic
models (a field's ``description``, else the comment above or beside it in the source).
``--check`` writes nothing and fails when the committed page differs."""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ticketbert.config import RunConfig  # noqa: E402
from ticketbert.sweep.config import SweepConfig  # noqa: E402

PAGE = ROOT / "docs" / "reference" / "config.md"
# descriptions of the fields whose source has neither a description nor a comment
MORE = {
    "name": "the run's name (folders, MLflow run names)",
    "train.tasks": "tasks trained together; several = multitask, one shared encoder with a head per task",
    "train.epochs": "training epochs",
    "train.lr": "peak learning rate (linear warm-up, then linear decay)",
    "train.batch_size": "training batch size per task",
    "train.eval_batch_size": "batch size of evaluation",
    "train.warmup_ratio": "share of the optimizer steps spent warming up the learning rate",
    "train.weight_decay": "AdamW weight decay",
    "train.max_grad_norm": "gradient clipping norm (None: no clipping)",
    "train.seed": "seed of initialisation, batching and subsamples",
    "prune.method": "what is pruned: magnitude (weights), heads, ffn (neurons), layers, heads+ffn (one budget); "
                    "none = dense",
    "tracking.enabled": "log the run to MLflow",
    "sweep.name": "the sweep's name: its MLflow experiment and its folder under storage",
    "grid.tasks": "tasks of the grid (one dense model per task and seed)",
    "search.space.<name>.low": "lower end of the searched range of the run-config field <name> (dotted)",
    "search.space.<name>.high": "upper end of the range",
    "search.space.<name>.log": "sample on a log scale",
    "search.space.<name>.integer": "sample integers",
    "search.num_samples": "trials sampled by the search per grid point",
    "search.metric": "the metric the search optimises",
    "search.mode": "maximise or minimise it",
    "resources.cpus_per_trial": "CPUs reserved per trial",
}
FIELD_LINE = re.compile(r"^\s{4}(\w+)\s*:")
BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "at least"))


def comments(model: type[BaseModel]) -> dict[str, str]:
    """Per field: the comment block above it (it covers the fields up to the next blank line or
    comment) and a comment beside it."""
    found, block, open_block = {}, [], False
    for line in inspect.getsource(model).splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            block = block + [stripped.lstrip("# ")] if open_block else [stripped.lstrip("# ")]
            open_block = True
            continue
        match = FIELD_LINE.match(line)
        if match and not stripped.startswith(("def ", "@", "model_config")):
            beside = line.split("  # ", 1)[1].strip() if "  # " in line else ""
            found[match.group(1)] = " ".join(block + ([beside] if beside else []))
            open_block = False
        elif not stripped:
            block, open_block = [], False
    return found


def type_name(annotation) -> str:
    """A short, readable name of a field's type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def default_text(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.is_required():
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{value}`" if value is not None else "`None`"


def bounds_text(field) -> str:
    parts = []
    for item in field.metadata:
        for name, symbol in BOUNDS:
            value = getattr(item, name, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def model_inside(annotation) -> tuple[type[BaseModel] | None, bool]:
    """The config section a field holds, and whether it is a dict of them (keyed by name)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    candidates = args[1:] if origin is dict else args or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate, origin is dict
    return None, False


def rows(model: type[BaseModel], prefix: str) -> list[str]:
    """Table rows of ``model``'s fields, sections expanded in place."""
    notes = comments(model)
    lines = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        nested, keyed = model_inside(field.annotation)
        if nested is not None and nested is not RunConfig:
            lines += rows(nested, f"{dotted}.<name>." if keyed else f"{dotted}.")
            continue
        description = field.description or notes.get(name) or MORE.get(dotted if prefix or model is RunConfig
                                                                        else f"sweep.{dotted}", "")
        if nested is RunConfig:
            description = "a run config: every field of the run config table, as `base.<field>`"
        lines.append(f"| `{dotted}` | {type_name(field.annotation).replace('|', '&#124;')} | {default_text(field)} "
                     f"| {bounds_text(field)} | {description} |")
    return lines


def render() -> str:
    header = ["| field | type | default | bounds | description |", "|---|---|---|---|---|"]
    return "\n".join([
        "<!-- generated by `python docs/gen_config_reference.py` from the config models: edit those, not this page -->",
        "", "# Config reference", "",
        "Every field of the YAML configs, validated on load: an unknown key or a bad value is a one-line error "
        "naming the field. Any field can be overridden on the command line as `dotted.key=value` "
        "(values parsed as YAML, e.g. `train.tasks=[sst,sts]`).", "",
        "## Run config", "",
        "Read by `python -m ticketbert.train` and `python -m ticketbert.posthoc` (`--config FILE`).", "",
        *header, *rows(RunConfig, ""), "",
        "## Sweep config", "",
        "Read by `python -m tune.sweep` (`--config FILE`).", "",
        *header, *rows(SweepConfig, ""), ""])


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not PAGE.is_file() or PAGE.read_text() != text:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python docs/gen_config_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
