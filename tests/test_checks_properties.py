"""Property tests: for every config field of a run and of a sweep, values the field refuses
(the wrong shape, outside its own bounds, non-finite, not one of its choices) are answered by
the command line with exit code 2 and one line naming the field (in-process; the subprocess
table in test_checks.py also checks imports and time)."""

from __future__ import annotations

import contextlib
import io
import json
import math
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ticketbert.config import RunConfig
from ticketbert.posthoc import main as posthoc_main
from ticketbert.train import main as train_main
from ticketbert.sweep.checks import field_bounds, is_integer_field
from ticketbert.sweep.config import GRID_CONTROLLED, SearchDim, SweepConfig
from ticketbert.sweep.sweep import main as sweep_main


def fields_of(model: type[BaseModel], prefix: str = "") -> list[tuple[str, FieldInfo]]:
    """Every leaf field of ``model`` as (dotted path, field info); sections are walked into."""
    found = []
    for name, info in model.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            found += fields_of(info.annotation, f"{prefix}{name}.")
        elif get_origin(info.annotation) in (Union, UnionType) and any(
                isinstance(a, type) and issubclass(a, BaseModel) for a in get_args(info.annotation)):
            found += fields_of(next(a for a in get_args(info.annotation) if isinstance(a, type)
                                    and issubclass(a, BaseModel)), f"{prefix}{name}.")  # search: SearchConfig | None
        else:
            found.append((f"{prefix}{name}", info))
    return found


RUN_FIELDS = fields_of(RunConfig)
SWEEP_FIELDS = [(path, info) for path, info in fields_of(SweepConfig)
                if not path.startswith("base.") and path not in GRID_CONTROLLED]
DIM_FIELDS = list(SearchDim.model_fields.items())


def _outside(operator: str, bound: float, integer: bool) -> st.SearchStrategy:
    step = 1 if integer else 1e-6
    low, high = {">": (None, bound), ">=": (None, bound - step), "<": (bound, None),
                 "<=": (bound + step, None)}[operator]
    if integer:
        return st.integers(min_value=None if low is None else math.ceil(low),
                           max_value=None if high is None else math.floor(high))
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


def _scalar_kinds(annotation: Any) -> set[Any]:
    args = get_args(annotation)
    return set(args) if args and get_origin(annotation) is not Literal else {annotation}


def invalid_values(info: FieldInfo) -> st.SearchStrategy:
    """Values ``info``'s field refuses."""
    annotation = info.annotation
    origin = get_origin(annotation)
    if origin is dict:
        return st.sampled_from([[1, 2], "text", 3])
    if origin is list:
        return st.one_of(st.just({"a": 1}), st.lists(st.dictionaries(st.text(max_size=2), st.integers(), min_size=1),
                                                      min_size=1, max_size=2))
    strategies = [st.dictionaries(st.sampled_from("abc"), st.integers(), min_size=1, max_size=2)]  # the wrong shape
    integer = is_integer_field(info)
    strategies += [_outside(operator, bound, integer) for operator, bound in field_bounds(info)]
    kinds = _scalar_kinds(annotation)
    if float in kinds:
        strategies.append(st.sampled_from([math.inf, -math.inf, math.nan]))
    if integer:
        strategies.append(st.floats(min_value=-1e6, max_value=1e6).filter(lambda x: x != int(x)))
    literals = [a for a in ([annotation] if get_origin(annotation) is Literal else get_args(annotation))
                if get_origin(a) is Literal]
    for literal in literals:
        choices = get_args(literal)
        strategies.append(st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
            lambda text, choices=choices: text not in choices))
    return st.one_of(strategies)


def as_yaml(value: Any) -> str:
    """``value`` as the YAML of a ``key=value`` override (non-finite floats as YAML spells them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return json.dumps(value)


def answer(main, arguments: list[str]) -> tuple[int, list[str]]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(arguments)
    return code, err.getvalue().strip().splitlines()


def assert_refused(main, arguments: list[str], field: str) -> None:
    code, lines = answer(main, ["--check", *arguments])
    assert code == 2, (arguments, lines)
    assert len(lines) == 1 and lines[0].startswith("error: ") and field in lines[0], (arguments, lines)


BOUNDED = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])


@pytest.mark.parametrize("path, info", RUN_FIELDS, ids=[p for p, _ in RUN_FIELDS])
@BOUNDED
@given(data=st.data())
def test_every_run_field_refuses_invalid_values_in_train_and_posthoc(path, info, data):
    value = data.draw(invalid_values(info), label=path)
    assert_refused(train_main, [f"{path}={as_yaml(value)}"], path)
    assert_refused(posthoc_main, ["--model", ".", f"{path}={as_yaml(value)}"], path)


@pytest.mark.parametrize("path, info", SWEEP_FIELDS, ids=[p for p, _ in SWEEP_FIELDS])
@BOUNDED
@given(data=st.data())
def test_every_sweep_field_refuses_invalid_values(path, info, data):
    value = data.draw(invalid_values(info), label=path)
    assert_refused(sweep_main, [f"{path}={as_yaml(value)}"], path)


@pytest.mark.parametrize("name, info", DIM_FIELDS, ids=[n for n, _ in DIM_FIELDS])
@BOUNDED
@given(data=st.data())
def test_every_search_dimension_field_refuses_invalid_values(name, info, data):
    dim = {"low": 1.0e-5, "high": 1.0e-3, "log": True, name: data.draw(invalid_values(info), label=name)}
    fields = ", ".join(f"{json.dumps(k)}: {as_yaml(v)}" for k, v in dim.items())
    override = "search.space={\"train.lr\": {" + fields + "}}"
    assert_refused(sweep_main, [override], f"search.space.train.lr.{name}")


def test_every_field_is_covered():
    assert {"name", "plugins", "output_dir", "data.dir", "model.encoder", "train.lr", "train.batch_size",
            "prune.early_bird_window", "prune.levels", "tracking.uri"} <= {p for p, _ in RUN_FIELDS}
    assert {"grid.seeds", "search.metric", "search.space", "resources.cpus_per_trial", "max_failures",
            "storage"} <= {p for p, _ in SWEEP_FIELDS}
