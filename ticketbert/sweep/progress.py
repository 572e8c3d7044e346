"""The sweep's console: one progress line per stage instead of Ray's status blocks."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ray.tune import ProgressReporter


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}"


class ProgressLine(ProgressReporter):
    """``[prune] 12/24 done, 2 running, 0 failed, 1 retried | 3:05 elapsed, ETA 3:05``.

    On a terminal the line is rewritten in place (and its clock every few seconds); in a log
    it is printed when the stage starts and whenever a trial finishes, fails or is retried.
    A trial that fails gets one line with its error file, whether Tune retries it or not."""

    def __init__(self, stage: str, stream: TextIO | None = None, refresh_s: float = 5.0):
        self.stage, self._stream, self.refresh_s = stage, stream, refresh_s  # None: sys.stdout (picklable)
        self.start, self.total = time.time(), 0
        self.last_counts: tuple | None = None
        self.last_time = 0.0
        self.failures_seen: dict[str, int] = {}
        self.last_finished: tuple | None = None  # (done, failed, retried) when a line was last printed

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stdout

    @property
    def interactive(self) -> bool:
        return self.stream.isatty()

    def setup(self, start_time: float | None = None, total_samples: int | None = None, **kwargs) -> None:
        self.start, self.total = start_time or time.time(), int(total_samples or 0)

    @staticmethod
    def counts(trials) -> tuple[int, int, int, int]:
        """(done, running, failed, retried) over ``trials``."""
        status = [t.status for t in trials]
        return (status.count("TERMINATED"), status.count("RUNNING"), status.count("ERROR"),
                sum(t.num_failures for t in trials))

    def line(self, trials, now: float | None = None) -> str:
        done, running, failed, retried = self.counts(trials)
        total = max(self.total, len(trials))
        elapsed = (now or time.time()) - self.start
        finished = done + failed
        eta = format_duration(elapsed / finished * (total - finished)) if finished else "?"
        retries = f", {retried} retried" if retried else ""
        return (f"[{self.stage}] {done}/{total} done, {running} running, {failed} failed{retries} | "
                f"{format_duration(elapsed)} elapsed, ETA {eta}")

    def should_report(self, trials, done: bool = False) -> bool:
        if done or self.counts(trials) != self.last_counts:
            return True
        return self.interactive and time.time() - self.last_time >= self.refresh_s

    def report(self, trials, done: bool, *sys_info: str) -> None:
        for trial in trials:
            if trial.num_failures > self.failures_seen.get(trial.trial_id, 0):
                self.failures_seen[trial.trial_id] = trial.num_failures
                self._print(f"[{self.stage}] trial {trial} failed (attempt {trial.num_failures}): "
                            f"{trial.error_file or 'no error file'}", final=True)
        done_count, _, failed, retried = self.last_counts = self.counts(trials)
        self.last_time = time.time()
        if self.interactive:
            self._print(self.line(trials), final=done)
        elif (done_count, failed, retried) != self.last_finished:
            self._print(self.line(trials), final=True)
        self.last_finished = (done_count, failed, retried)

    def _print(self, text: str, final: bool) -> None:
        if self.interactive:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
