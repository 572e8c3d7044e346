"""The MLflow UI addresses a sweep prints: the runs table in model-training mode and the report."""

from pathlib import Path

import pytest

from ticketbert.tracking import run_address, runs_table_address
from ticketbert.sweep.sweep import print_locations


@pytest.mark.parametrize("base", ["http://127.0.0.1:5000", "http://127.0.0.1:5000/"])
def test_addresses_open_model_training_mode(base):
    assert runs_table_address(base, "7") == "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    assert run_address(base, "7", "abc") == (
        "http://127.0.0.1:5000/#/experiments/7/runs/abc?workflowType=machine_learning")
    assert run_address(base, "7", "abc", "analysis/report.md") == (
        "http://127.0.0.1:5000/#/experiments/7/runs/abc/artifacts/analysis/report.md?workflowType=machine_learning")


def test_a_local_store_gets_the_ui_command_and_its_addresses(capsys):
    print_locations("quickstart", "sqlite:///x/mlflow.db", Path("ray_results/q"), "3", "run9")
    out = capsys.readouterr().out.splitlines()
    assert "browse: mlflow ui --backend-store-uri sqlite:///x/mlflow.db --host 127.0.0.1 --port 5000 --workers 1" in out
    assert "runs table: http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning" in out
    assert ("report: http://127.0.0.1:5000/#/experiments/3/runs/run9/artifacts/analysis/report.md"
            "?workflowType=machine_learning") in out


def test_a_tracking_server_gets_its_own_addresses(capsys):
    print_locations("study", "http://head:5000", Path("s"), "2", "p1")
    out = capsys.readouterr().out
    assert "mlflow ui" not in out
    assert "runs table: http://head:5000/#/experiments/2/runs?workflowType=machine_learning" in out
    assert "analyse: python -m analysis --experiment study  (with MLFLOW_TRACKING_URI=http://head:5000)" in out
