"""Ctrl-C (and SIGTERM, which the command lines turn into SIGINT) held back while an epoch's
metrics are logged and its checkpoint written, so that an interrupted run never has an epoch
logged but not checkpointed (a resume would train and log it a second time)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Run the block with SIGINT held back; one that arrived meanwhile is re-sent when the block
    ends, to the handler that was there before (Python's raises ``KeyboardInterrupt``). A no-op
    outside the main thread (where Python cannot install signal handlers) and where SIGINT is
    ignored."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous in (signal.SIG_IGN, None):
        yield
        return
    arrived: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: arrived.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if arrived:
        signal.raise_signal(signal.SIGINT)
