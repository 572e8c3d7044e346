"""``python -m ticketbert.posthoc --config C --model DIR``: sweep every pruning method over
sparsity levels from one fine-tuned model (``ticketbert.measure.sweep_sparsity``)."""

from __future__ import annotations

from ticketbert.config import PruneConfig
from ticketbert.pruning.methods.description import CONFIG_OPTIONS, describe

DEFAULT_LEVELS = [round(0.1 * i, 1) for i in range(10)]


def options_for(prune: PruneConfig, method: str) -> PruneConfig:
    """``prune`` with the method options ``method`` does not take cleared (prune.* overrides
    apply to every method of the sweep that can use them)."""
    described = describe(method)
    update = {option: None for option in CONFIG_OPTIONS if option in PruneConfig.model_fields
              and not described.takes(option)}
    return PruneConfig.model_validate({**prune.model_dump(), **update, "method": method})


def main(argv: list[str] | None = None) -> int:
    """``python -m ticketbert.posthoc --config C --model DIR``: sweep every method over levels."""
    import argparse
    import sys
    from pathlib import Path

    from ticketbert.config import ConfigError, load_config
    from ticketbert.data import DataError
    from ticketbert.extras import MissingExtra, require

    try:
        require("train", "python -m ticketbert.posthoc")
    except MissingExtra as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from ticketbert.measure import sweep_sparsity
    from ticketbert.models import load_tokenizer
    from ticketbert.pruning import load_pruned, method_limit
    from ticketbert.run import encode_data, read_data, run_tags
    from ticketbert.tracking import Tracker

    parser = argparse.ArgumentParser(prog="python -m ticketbert.posthoc", description=main.__doc__)
    parser.add_argument("--config", type=Path, help="the run config the model was trained with (data, train)")
    parser.add_argument("--model", type=Path, required=True, help="a fine-tuned model directory (save_pruned)")
    parser.add_argument("--methods", nargs="+", default=["magnitude", "heads", "ffn", "layers"],
                        help="any of magnitude, heads, ffn, layers, heads+ffn")
    parser.add_argument("--criterion", action="append", default=[], metavar="METHOD=CRITERION",
                        help="criterion per method, e.g. heads=loss_increment (default: the method's usual)")
    parser.add_argument("--levels", type=lambda s: [float(x) for x in s.split(",")], default=DEFAULT_LEVELS)
    parser.add_argument("overrides", nargs="*", help="dotted.key=value config overrides")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
        criteria = dict(item.split("=", 1) for item in args.criterion)
        raws = read_data(config)
        tokenizer = load_tokenizer(config.model.encoder)
        data = encode_data(config, raws, tokenizer)
    except (ConfigError, DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pad_id = tokenizer.pad_token_id
    model = load_pruned(args.model)
    tracker = Tracker(config.tracking.uri, config.tracking.experiment)
    tags = {**run_tags(config), "mode": "posthoc", "model_dir": str(args.model.resolve())}
    parent = tracker.start(f"posthoc:{args.model.resolve()}:{config.name}", run_name=f"posthoc-{config.name}",
                           tags=tags, params=config.model_dump(mode="json"))
    for method in args.methods:
        limit = method_limit(model, method)
        levels = [level for level in args.levels if level <= limit + 1e-9]
        skipped = [level for level in args.levels if level > limit + 1e-9]
        if skipped:
            print(f"{method}: levels {skipped} exceed its maximum {limit:.1%}; skipped")
        results = sweep_sparsity(model, data, levels, method=method, criterion=criteria.get(method),
                                 train=config.train, pad_id=pad_id, calibration_examples=config.prune.calibration_examples,
                                 tracker=tracker, parent_run_id=parent.run_id, run_key=parent.run_id, tags=tags,
                                 recovery_epochs=config.prune.recovery_epochs, options=options_for(config.prune, method))
        for result in results:
            shown = {k: round(v, 4) for k, v in result.metrics.items()
                     if k.startswith("dev/") and not k.endswith("loss") or k in ("achieved_sparsity", "speedup")}
            print(f"{method} {result.sparsity:.2f}: {shown}", flush=True)
    parent.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
