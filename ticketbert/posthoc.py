"""``python -m ticketbert.posthoc --config C --model DIR [--check]``: sweep every pruning method
over sparsity levels from one fine-tuned model (``ticketbert.measure.sweep_sparsity``).

Methods, criteria, levels, the model folder and what the run needs (``ticketbert.checks``) are
checked before anything heavy is imported; the parent MLflow run ends FINISHED, FAILED or KILLED,
never left RUNNING."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ticketbert.checks import check_environment, check_saved_model
from ticketbert.cli import INTERRUPTED, fail, print_resolved, terminate_as_interrupt
from ticketbert.config import ConfigError, PruneConfig, RunConfig, format_validation_error, load_config
from ticketbert.data import DataError
from ticketbert.extras import MissingExtra, require
from ticketbert.pruning.methods.description import describe, method_names
from ticketbert.pruning.nm_pattern import parse_pattern

DEFAULT_LEVELS = [round(0.1 * i, 1) for i in range(10)]


@dataclass(frozen=True)
class PosthocPlan:
    """The checked arguments of a post-hoc sweep."""

    config: RunConfig
    model: Path
    methods: list[str]
    options: dict[str, PruneConfig]  # method -> its prune options and criterion
    levels: list[float]


def parse_levels(raw: str | None, default: list[float]) -> list[float]:
    """``--levels 0.1,0.5``: finite, in [0, 1), each once; ``default`` when not given."""
    if raw is None:
        return default
    levels = []
    for item in raw.split(","):
        try:
            level = float(item)
        except ValueError:
            raise ConfigError(f"--levels: {item!r} is not a number; give fractions in [0, 1), e.g. 0.1,0.5") from None
        if not (math.isfinite(level) and 0.0 <= level < 1.0):
            raise ConfigError(f"--levels: {item} is outside [0, 1); a level is the fraction of weights removed")
        if level in levels:
            raise ConfigError(f"--levels: {item} repeats; give each level once")
        levels.append(level)
    return levels


def parse_criteria(items: list[str], methods: list[str]) -> dict[str, str]:
    """``--criterion heads=taylor``: a criterion the method ranks by, for a method of the sweep."""
    criteria = {}
    for item in items:
        method, sep, criterion = item.partition("=")
        if not sep or method not in methods:
            raise ConfigError(f"--criterion: {item!r}: expected METHOD=CRITERION with METHOD one of "
                              f"{', '.join(methods)}")
        try:
            criteria[method] = describe(method).check_criterion(criterion)
        except ValueError as exc:
            raise ConfigError(f"--criterion: {item!r}: {exc}") from None
    return criteria


def check_arguments(args: argparse.Namespace) -> PosthocPlan:
    """Everything checkable before heavy imports; ConfigError/DataError naming the argument."""
    config = load_config(args.config, args.overrides)
    unknown = [m for m in args.methods if m not in method_names()]
    if unknown:
        raise ConfigError(f"--methods: unknown method {unknown[0]!r}; choose from {', '.join(method_names())}")
    if len(set(args.methods)) != len(args.methods):
        raise ConfigError(f"--methods: {' '.join(args.methods)} repeats a method; give each once")
    criteria = parse_criteria(args.criterion, args.methods)
    levels = parse_levels(args.levels, config.prune.levels or DEFAULT_LEVELS)
    check_saved_model(args.model, "--model")
    options = {}
    for method in args.methods:
        try:
            options[method] = config.prune.for_method(method, criterion=criteria.get(method), levels=[])
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, f"--methods {method}")) from None
    check_environment(config)
    return PosthocPlan(config, args.model, list(args.methods), options, levels)


def main(argv: list[str] | None = None) -> int:
    """``python -m ticketbert.posthoc --config C --model DIR``: sweep every method over levels."""
    parser = argparse.ArgumentParser(prog="python -m ticketbert.posthoc", description=main.__doc__)
    parser.add_argument("--config", type=Path, help="the run config the model was trained with (data, train)")
    parser.add_argument("--model", type=Path, required=True, help="a fine-tuned model directory (save_pruned)")
    parser.add_argument("--methods", nargs="+", default=["magnitude", "heads", "ffn", "layers"],
                        help=f"any of {', '.join(method_names())}")
    parser.add_argument("--criterion", action="append", default=[], metavar="METHOD=CRITERION",
                        help="criterion per method, e.g. heads=loss_increment (default: the method's usual)")
    parser.add_argument("--levels", default=None,
                        help="comma-separated sparsities in [0, 1) (default: prune.levels, else 0,0.1,...,0.9)")
    parser.add_argument("--check", action="store_true", help="check the arguments, print the plan; run nothing")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value config overrides")
    args = parser.parse_args(argv)
    terminate_as_interrupt()
    try:
        require("train", "python -m ticketbert.posthoc")
        plan = check_arguments(args)
    except (ConfigError, DataError, MissingExtra) as exc:
        return fail(exc)
    if args.check:
        print_resolved("posthoc", {"model": str(plan.model), "methods": plan.methods, "levels": plan.levels,
                                   "criteria": {m: o.criterion for m, o in plan.options.items()},
                                   "config": plan.config.model_dump(mode="json")})
        return 0
    try:
        return run_posthoc(plan)
    except (ConfigError, DataError) as exc:
        return fail(exc)
    except KeyboardInterrupt:
        print("interrupted: the parent run is marked KILLED", file=sys.stderr)
        return INTERRUPTED


def run_posthoc(plan: PosthocPlan) -> int:
    """The sweep itself (heavy imports from here on); the parent run is closed however it ends."""
    from ticketbert.measure import sweep_sparsity
    from ticketbert.models import load_tokenizer
    from ticketbert.pruning import load_pruned, method_limit
    from ticketbert.run import encode_data, read_data, run_tags
    from ticketbert.tracking import Tracker, closing

    config = plan.config
    raws = read_data(config)
    tokenizer = load_tokenizer(config.model.encoder)
    data = encode_data(config, raws, tokenizer)
    model = load_pruned(plan.model)
    tracker = Tracker(config.tracking.uri, config.tracking.experiment)
    tags = {**run_tags(config), "mode": "posthoc", "model_dir": str(plan.model.resolve())}
    parent = tracker.start(f"posthoc:{plan.model.resolve()}:{config.name}", run_name=f"posthoc-{config.name}",
                           tags=tags, params=config.model_dump(mode="json"))
    with closing(parent):
        for method in plan.methods:
            options = plan.options[method]
            limit = method_limit(model, method)
            levels = [level for level in plan.levels if level <= limit + 1e-9]
            skipped = [level for level in plan.levels if level > limit + 1e-9]
            if options.pattern is not None:  # N:M fixes the level
                levels, skipped = [parse_pattern(options.pattern).sparsity], []
            if skipped:
                print(f"{method}: levels {skipped} exceed its maximum {limit:.1%}; skipped")
            results = sweep_sparsity(model, data, levels, method=method, criterion=options.criterion,
                                     train=config.train, pad_id=tokenizer.pad_token_id,
                                     calibration_examples=config.prune.calibration_examples, tracker=tracker,
                                     parent_run_id=parent.run_id, run_key=parent.run_id, tags=tags,
                                     recovery_epochs=config.prune.recovery_epochs, options=options)
            label = f"{method} {options.pattern}" if options.pattern else method
            for result in results:
                shown = {k: round(v, 4) for k, v in result.metrics.items()
                         if k.startswith("dev/") and not k.endswith("loss")
                         or k in ("achieved_sparsity", "speedup", "prune_seconds")}
                print(f"{label} {result.sparsity:.2f}: {shown}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
