"""What the command lines share: SIGTERM handled as SIGINT, one-line errors, ``--check`` output."""

from __future__ import annotations

import signal
import sys
from typing import Any

import yaml

USAGE_ERROR = 2  # exit code of a bad argument or config (argparse's own)
INTERRUPTED = 130


def terminate_as_interrupt() -> None:
    """SIGTERM (preemption, ``kill``, a scheduler) does what Ctrl-C does: the command's SIGINT
    handling (checkpoint kept, runs marked, resumable) runs instead of a hard stop."""
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))


def fail(exc: BaseException) -> int:
    """Print ``exc`` as one ``error:`` line on stderr; the usage-error exit code."""
    print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
    return USAGE_ERROR


def print_resolved(title: str, resolved: dict[str, Any]) -> None:
    """``--check``: what would run, as YAML."""
    print(f"{title}: checked; nothing run")
    print(yaml.safe_dump(resolved, sort_keys=False, default_flow_style=None).rstrip())
