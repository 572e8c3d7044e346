"""Running sweep stages with Ray Tune: grid or Optuna search, retries, restore, progress."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from ticketbert.sweep.cleanup import CheckpointCleanup
from ticketbert.sweep.config import SearchConfig, SweepConfig
from ticketbert.sweep.instance import SweepInstance
from ticketbert.sweep.progress import ProgressLine
from ticketbert.sweep.records import TrialResult
from ticketbert.sweep.resources import TrialResources
from ticketbert.sweep.trainable import train_trial

MAX_TEMP_DIR_LENGTH = 45
# what Tune's controller raises when Ray's memory monitor killed a trial's worker
OOM_KILLED = "killed due to the node running low on memory"
PROGRESS_METRICS = {"dev/overall": "dev", "achieved_sparsity": "sparsity", "speedup": "speedup", "epoch": "epoch"}
# every trial's process: no progress bars or advisory warnings of transformers / the hub, and
# two malloc arenas: Tune runs each trial in a new thread of a reused actor, and glibc's
# per-thread arenas (up to 8 per core) kept each trial's freed tensors, growing the actor to OOM
WORKER_ENV = {"MALLOC_ARENA_MAX": "2", "TRANSFORMERS_VERBOSITY": "error", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
              "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}


def search_domain(dim) -> Any:
    if dim.integer:
        return tune.randint(int(dim.low), int(dim.high) + 1)
    return tune.loguniform(dim.low, dim.high) if dim.log else tune.uniform(dim.low, dim.high)


def ray_temp_dir() -> Path:
    """Ray's session folder: ``$RAY_TMPDIR`` or ``./.ray`` in the project, unless that path is
    too long for Ray's unix sockets (107 bytes with ~60 of session and socket names below it)."""
    temp = Path(os.environ.get("RAY_TMPDIR") or ".ray").resolve()
    if len(str(temp)) > MAX_TEMP_DIR_LENGTH:
        temp = Path(tempfile.gettempdir()) / f"ticketbert-ray-{os.getuid()}"
    return temp


def connect(address: str | None, verbose: bool) -> bool:
    """Connect to the Ray cluster at ``address`` or start a local instance; True if this call
    started or joined it (and so should shut it down). Unless ``verbose``, trial output stays in
    Ray's log files (the driver has read the data and shown its warnings once) and Ray logs
    warnings only."""
    if ray.is_initialized():
        return False
    quiet = {} if verbose else {"log_to_driver": False, "logging_level": logging.WARNING}
    runtime_env = {"env_vars": WORKER_ENV}
    if address:
        ray.init(address=address, runtime_env=runtime_env, **quiet)
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no ~/.ray/auth_token for a local instance
        ray.init(_temp_dir=str(ray_temp_dir()), include_dashboard=False, configure_logging=False,
                 runtime_env=runtime_env, **quiet)
    if not verbose:
        for name in ("ray.tune", "mlflow", "alembic"):  # their INFO lines: store set-up, result files written
            logging.getLogger(name).setLevel(logging.WARNING)
    return True


class SweepRunner:
    """Runs the Tune experiments of one sweep instance on a connected Ray cluster."""

    def __init__(self, config: SweepConfig, base: dict[str, Any], resources: TrialResources,
                 instance: SweepInstance, *, resume: bool = False, verbose: bool = False):
        self.config, self.base, self.resources, self.resume = config, base, resources, resume
        self.instance, self.verbose = instance, verbose
        self.storage = instance.tune_dir

    def _trial(self, stage: str, overrides: dict[str, Any], parent_run_id: str) -> dict[str, Any]:
        return {"base": self.base, "overrides": overrides, "stage": stage, "sweep": self.config.name,
                "label": overrides["name"].removeprefix(f"{self.config.name}-"), "parent_run_id": parent_run_id,
                "run_key": self.instance.trial_key(overrides["name"]), "cpus": self.resources.cpu}

    def _reporter(self, name: str) -> tune.ProgressReporter:
        if self.verbose:
            return tune.CLIReporter(metric_columns=PROGRESS_METRICS, parameter_columns={"trial/label": "trial"},
                                    max_report_frequency=30, max_column_length=28)
        return ProgressLine(name)

    def _restore(self, name: str) -> tune.Tuner:
        trainable = tune.with_resources(train_trial, self.resources.as_dict())
        return tune.Tuner.restore(str(self.storage / name), trainable=trainable, resume_errored=True)

    def _tuner(self, name: str, space: dict[str, Any], tune_config: tune.TuneConfig) -> tune.Tuner:
        path = self.storage / name
        if self.resume and tune.Tuner.can_restore(str(path)):
            return self._restore(name)
        trainable = tune.with_resources(train_trial, self.resources.as_dict())
        shutil.rmtree(path, ignore_errors=True)
        run_config = tune.RunConfig(name=name, storage_path=str(self.storage), progress_reporter=self._reporter(name),
                                    failure_config=tune.FailureConfig(max_failures=self.config.max_failures),
                                    callbacks=[CheckpointCleanup()], verbose=1)
        return tune.Tuner(trainable, param_space=space, tune_config=tune_config, run_config=run_config)

    def run_stage(self, stage: str, overrides: list[dict[str, Any]], parent_run_id: str,
                  search: bool = False) -> list[TrialResult]:
        """Run one trial per overrides entry; results in the same order. With a search config
        (and ``search``), every entry is tuned by Optuna and its best trial is returned."""
        trials = [self._trial(stage, o, parent_run_id) for o in overrides]
        if search and self.config.search is not None:
            return [self._search(f"{stage}-{i}", trial, self.config.search) for i, trial in enumerate(trials)]
        tune_config = tune.TuneConfig(max_concurrent_trials=self.resources.max_concurrent, reuse_actors=True,
                                      trial_name_creator=lambda t: t.config["trial"]["label"],
                                      trial_dirname_creator=lambda t: t.config["trial"]["label"])
        grid = self._fit(stage, self._tuner(stage, {"trial": tune.grid_search(trials)}, tune_config), len(trials))
        by_label = {r.config["trial"]["label"]: r for r in grid}
        return [self._metrics(by_label.get(t["label"]), t["label"]) for t in trials]

    def _search(self, name: str, trial: dict[str, Any], search: SearchConfig) -> TrialResult:
        space = {"trial": trial, "searched": {k.replace(".", "__"): search_domain(d) for k, d in search.space.items()}}
        searcher = ConcurrencyLimiter(OptunaSearch(metric=search.metric, mode=search.mode),
                                      max_concurrent=self.resources.max_concurrent)
        tune_config = tune.TuneConfig(search_alg=searcher, num_samples=search.num_samples, metric=search.metric,
                                      mode=search.mode, trial_name_creator=lambda t: f"{trial['label']}-{t.trial_id}")
        grid = self._fit(name, self._tuner(name, space, tune_config), search.num_samples)
        return self._metrics(grid.get_best_result(metric=search.metric, mode=search.mode), trial["label"])

    def _fit(self, name: str, tuner: tune.Tuner, expected: int) -> tune.ResultGrid:
        """Run the experiment of ``expected`` trials; KeyboardInterrupt if Tune stopped it on a
        signal (trials left unfinished), so that the sweep is marked interrupted, not finished. When Ray's memory
        monitor kills a trial's actor, Tune's controller raises instead of retrying the trial
        (Ray 2.5x): the experiment is restored from its saved state, finished trials kept,
        up to ``max_failures`` times."""
        for attempt in range(self.config.max_failures + 1):
            try:
                grid = tuner.fit()
                break
            except RuntimeError as exc:
                if OOM_KILLED not in str(exc) or attempt == self.config.max_failures:
                    raise
                print(f"[{name}] Ray killed a trial's worker for lack of memory; restoring the experiment "
                      f"(attempt {attempt + 2} of {self.config.max_failures + 1})", flush=True)
                tuner = self._restore(name)
        # a trial ends with its final report ("done") or an error; Tune stopped on a signal reports
        # the trial it stopped as terminated and never lists those it did not start
        ended = sum(1 for result in grid if result.error is not None or (result.metrics or {}).get("done"))
        if ended < expected:
            raise KeyboardInterrupt(f"{expected - ended} trial(s) unfinished")
        return grid

    @staticmethod
    def _metrics(result, label: str) -> TrialResult:
        """The outcome of Tune's ``result`` of the trial ``label`` (None: Tune never listed it)."""
        if result is None or result.error is not None or not result.metrics:
            return TrialResult(label, error=str(getattr(result, "error", "missing")))
        return TrialResult.reported(label, result.metrics)
