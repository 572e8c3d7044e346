"""``python -m ticketbert.train [--config PATH] [dotted.key=value ...]``: one training run.

The config and every task's rows are read and checked first, without importing torch (a bad
declaration or file fails in about a second, before any model is loaded), then the model
is fine-tuned (and pruned, as the config's ``prune`` section says), with metrics per epoch in
MLflow and a checkpoint per epoch; rerunning the same config resumes where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ticketbert.config import ConfigError, load_config
from ticketbert.data import DataError, read_run_data
from ticketbert.extras import MissingExtra, require


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ticketbert.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="YAML config (default: built-in defaults)")
    parser.add_argument("overrides", nargs="*", help="dotted.key=value overrides, e.g. train.lr=1e-5")
    args = parser.parse_args(argv)
    try:
        require("train", "python -m ticketbert.train")
        config = load_config(args.config, args.overrides)
        raws = read_run_data(config)
        from ticketbert.run import run_training  # torch, transformers: only once the data is known good

        result = run_training(config, raws=raws)
    except (ConfigError, DataError, MissingExtra) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the last finished epoch is checkpointed; rerun the same command to resume",
              file=sys.stderr)
        return 130
    shown = {k: round(v, 4) for k, v in result.metrics.items() if k.startswith("dev/")}
    print(f"done: {shown}\nmodel: {result.model_dir}\nmlflow run: {result.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
