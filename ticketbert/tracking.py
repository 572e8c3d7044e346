"""The one module that talks to MLflow. Everything else hands it plain dicts.

Runs are keyed by a ``ticketbert.run_key`` tag: starting a run whose key already exists
(a retried or restored trial) reopens that run instead of creating a second one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ticketbert.extras import require

require("train", "MLflow tracking (ticketbert.tracking)")
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

RUN_KEY_TAG = "ticketbert.run_key"
PARENT_TAG = "mlflow.parentRunId"
MAX_PARAM_LENGTH = 6000
_BAD_KEY_CHARACTERS = re.compile(r"[^\w\-. :/]")
T = TypeVar("T")


UI_MODE = "workflowType=machine_learning"  # MLflow 3 opens an experiment on its GenAI overview without it
UI_ADDRESS = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def runs_table_address(base: str, experiment_id: str) -> str:
    """The MLflow UI's runs table of an experiment, in model-training mode."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?{UI_MODE}"


def run_address(base: str, experiment_id: str, run_id: str, artifact: str | None = None) -> str:
    """A run's page in the MLflow UI (model-training mode), or one of its artifacts."""
    page = f"artifacts/{artifact}" if artifact else ""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}/{page}".rstrip("/") + f"?{UI_MODE}"


def default_tracking_uri(root: Path | None = None) -> str:
    """``$MLFLOW_TRACKING_URI``, else an absolute ``sqlite:///<root>/mlruns/mlflow.db`` (root = cwd)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    store = (root or Path.cwd()).resolve() / "mlruns"
    store.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{store / 'mlflow.db'}"


def _artifact_root(uri: str) -> str | None:
    """Artifacts of a local SQLite store live beside the database."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    return None


def mlflow_key(name: str) -> str:
    """``name`` with every character MLflow refuses in a param or metric key replaced by ``_``
    (``grid.criteria.heads+ffn`` -> ``grid.criteria.heads_ffn``)."""
    return _BAD_KEY_CHARACTERS.sub("_", name)


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-5}}`` -> ``{"train.lr": 1e-5}``, keys made valid for MLflow."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{mlflow_key(str(key))}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _retry(call: Callable[[], T], attempts: int = 8) -> T:
    """Retry a store call on transient errors (SQLite 'database is locked' under concurrent trials)."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - the store raises several types for a lock
            if "locked" not in str(exc).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """An exclusive file lock beside a local SQLite store (no-op for other stores)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    lock = Path(uri.removeprefix("sqlite:///")).with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class MlflowLogger:
    """One MLflow run: params once, a batch of metrics per epoch, tags, status."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client = client
        self.run_id = run_id

    def log_dict(self, payload: Mapping[str, float], step: int) -> None:
        """All of ``payload`` as one batch at ``step`` (one store round-trip)."""
        now = int(time.time() * 1000)
        metrics = [Metric(mlflow_key(k), float(v), now, step) for k, v in payload.items() if v is not None]
        _retry(lambda: self.client.log_batch(self.run_id, metrics=metrics))

    def log_params(self, params: Mapping[str, Any]) -> None:
        existing = self.client.get_run(self.run_id).data.params
        items = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in flatten(params).items() if k not in existing]
        for start in range(0, len(items), 100):
            _retry(lambda: self.client.log_batch(self.run_id, params=items[start: start + 100]))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        items = [RunTag(k, str(v)) for k, v in tags.items() if v is not None]
        _retry(lambda: self.client.log_batch(self.run_id, tags=items))

    def close(self, status: str = "FINISHED") -> None:
        """End the run with ``status`` (FINISHED, FAILED or KILLED)."""
        _retry(lambda: self.client.set_terminated(self.run_id, status))


class Tracker:
    """Opens (or reopens) runs in one experiment of one tracking store."""

    def __init__(self, uri: str | None = None, experiment: str = "ticketbert"):
        self.uri = uri or default_tracking_uri()
        self.client = MlflowClient(self.uri)
        # the first connection creates the tables, and an experiment is created once: one process at a time
        with _store_lock(self.uri):
            found = _retry(lambda: self.client.get_experiment_by_name(experiment))
            if found is not None:
                self.experiment_id = found.experiment_id
            else:
                self.experiment_id = _retry(lambda: self.client.create_experiment(
                    experiment, artifact_location=_artifact_root(self.uri)))

    def find_run(self, run_key: str) -> str | None:
        """The id of the run tagged with ``run_key``, if any."""
        runs = _retry(lambda: self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}'", max_results=1))
        return runs[0].info.run_id if runs else None

    def start(self, run_key: str, *, run_name: str | None = None, tags: Mapping[str, Any] | None = None,
              params: Mapping[str, Any] | None = None, parent_run_id: str | None = None) -> MlflowLogger:
        """The run keyed ``run_key``: reopened if it exists, created otherwise."""
        run_id = self.find_run(run_key)
        all_tags = {RUN_KEY_TAG: run_key, **(tags or {})}
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        if run_id is None:
            run = _retry(lambda: self.client.create_run(self.experiment_id, run_name=run_name,
                                                        tags={k: str(v) for k, v in all_tags.items()}))
            run_id = run.info.run_id
        else:
            _retry(lambda: self.client.update_run(run_id, status="RUNNING"))
        logger = MlflowLogger(self.client, run_id)
        logger.set_tags(all_tags)
        if params:
            logger.log_params(params)
        return logger
