"""``python -m ticketbert.train [--config PATH] [--check] [dotted.key=value ...]``: one training run.

The config, everything the run needs (encoder, device, data folder, output folder, MLflow
store; ``ticketbert.checks``) and every task's rows are checked first, without importing torch
(a bad declaration or file fails in about a second, before any model is loaded); then the model
is fine-tuned (and pruned, as the config's ``prune`` section says), with metrics per epoch in
MLflow and a checkpoint per epoch; rerunning the same config resumes where it stopped (also
after SIGINT or SIGTERM).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ticketbert.checks import check_run
from ticketbert.cli import INTERRUPTED, fail, print_resolved, terminate_as_interrupt
from ticketbert.config import ConfigError, load_config
from ticketbert.data import DataError, read_run_data
from ticketbert.extras import MissingExtra, require


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ticketbert.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="YAML config (default: built-in defaults)")
    parser.add_argument("--check", action="store_true", help="check the config and print the resolved run; run nothing")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. train.lr=1e-5")
    args = parser.parse_args(argv)
    terminate_as_interrupt()
    try:
        require("train", "python -m ticketbert.train")
        config = load_config(args.config, args.overrides)
        encoder = check_run(config)
        raws = read_run_data(config)
    except (ConfigError, DataError, MissingExtra) as exc:
        return fail(exc)
    if args.check:
        print_resolved("run", {"encoder_folder": str(encoder.folder), **config.model_dump(mode="json")})
        return 0

    from ticketbert.run import run_training  # torch, transformers: only once config and rows are known good
    from ticketbert.training.loop import NonFiniteLoss

    try:
        result = run_training(config, raws=raws)
    except (ConfigError, DataError) as exc:
        return fail(exc)
    except NonFiniteLoss as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: the last finished epoch is checkpointed; rerun the same command to resume",
              file=sys.stderr)
        return INTERRUPTED
    shown = {k: round(v, 4) for k, v in result.metrics.items() if k.startswith("dev/")}
    print(f"done: {shown}\nmodel: {result.model_dir}\nmlflow run: {result.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
