"""MLflow round-trip: a run's params, tags and per-epoch metrics are found by search_runs."""

import mlflow
import pytest

from ticketbert.run import run_training
from ticketbert.train import main
from ticketbert.tracking import Tracker, flatten


def test_run_training_logs_metrics_per_epoch(tiny_run_config):
    config = tiny_run_config
    result = run_training(config)
    mlflow.set_tracking_uri(config.tracking.uri)
    runs = mlflow.search_runs(experiment_names=[config.tracking.experiment])
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "FINISHED" and run["run_id"] == result.run_id
    assert run["tags.task"] == "sst" and run["tags.mode"] == "dense" and run["tags.seed"] == "0"
    assert run["params.train.lr"] == "0.001"
    for name in ("dev/accuracy", "dev/f1", "dev/loss", "train/accuracy", "train/f1", "dev/overall"):
        assert run[f"metrics.{name}"] == pytest.approx(result.metrics[name])
    history = mlflow.MlflowClient().get_metric_history(result.run_id, "dev/accuracy")
    assert [m.step for m in history] == [1, 2]
    assert result.model_dir.joinpath("heads.safetensors").is_file()


def test_same_run_key_reopens_instead_of_duplicating(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'db.sqlite'}", "exp")
    first = tracker.start("trial-1", tags={"task": "sst"}, params={"a": {"b": 1}})
    first.log_dict({"dev/accuracy": 0.5}, step=1)
    first.close("FAILED")
    again = tracker.start("trial-1", tags={"task": "sst"}, params={"a": {"b": 1}})
    assert again.run_id == first.run_id
    again.log_dict({"dev/accuracy": 0.6}, step=2)
    again.close()
    runs = mlflow.MlflowClient(tracker.uri).search_runs([tracker.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.params == {"a.b": "1"}


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
    # MLflow refuses "+" in a key: the sweep's grid.criteria has a "heads+ffn" key
    assert flatten({"criteria": {"heads+ffn": "fisher"}}) == {"criteria.heads_ffn": "fisher"}


def test_cli_reports_bad_config_in_one_line(capsys):
    assert main(["train.lr=-3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: <config>: train.lr:") and len(err.strip().splitlines()) == 1


def test_cli_reports_bad_data_before_loading_a_model(tmp_path, capsys):
    assert main([f"data.dir={tmp_path}", "data.source=csv"]) == 2
    assert "ids-sst-train.csv: file not found" in capsys.readouterr().err
