"""The sweep on a task declared in YAML only (Ray, MLflow, the analysis naming its metric),
and one sweep trial per encoder family on a tiny random checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch
import transformers as hf
import yaml

from ticketbert.analysis.__main__ import main as analyse
from ticketbert.sweep.runner import connect
from ticketbert.sweep.sweep import main as sweep, shutdown_ray

pytestmark = pytest.mark.ray

PAIRS = [("a cat sits on the mat", "a cat is sitting", "same"), ("a dog runs", "the market fell today", "other"),
         ("kids play outside", "children are playing", "same"), ("rain is coming", "a man cooks rice", "other"),
         ("he sings a song", "he is singing", "same"), ("a red car", "a blue bike in the park", "other")]
SIZES = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=128)
FAMILIES = {  # family -> (config class, arguments, model class)
    "bert": (hf.BertConfig, SIZES, hf.BertModel),
    "roberta": (hf.RobertaConfig, dict(SIZES, pad_token_id=1, bos_token_id=0, eos_token_id=2), hf.RobertaModel),
    "distilbert": (hf.DistilBertConfig, dict(vocab_size=30522, dim=32, n_layers=2, n_heads=4, hidden_dim=64,
                                             max_position_embeddings=128), hf.DistilBertModel),
    "deberta-v2": (hf.DebertaV2Config, dict(SIZES, relative_attention=True, pos_att_type="p2c|c2p",
                                            max_relative_positions=16), hf.DebertaV2Model),
    "modernbert": (hf.ModernBertConfig, dict(SIZES, pad_token_id=0, cls_token_id=101, sep_token_id=102,
                                             local_attention=8), hf.ModernBertModel),
}


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    connect(None, verbose=False)  # one local Ray instance for every sweep of this file
    yield
    shutdown_ray()


def write_pair_task(folder: Path) -> None:
    """A pair classification task as JSONL files (train: every pair 4x, dev: once each)."""
    rows = [{"premise": a, "hypothesis": b, "relation": label} for a, b, label in PAIRS]
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows * 4))
    (folder / "data" / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def sweep_file(folder: Path, encoder: Path, name: str, **grid) -> Path:
    """A sweep config declaring the task ``pairs`` with files relative to the config's folder."""
    write_pair_task(folder)
    config = {
        "name": name, "storage": str(folder / "ray"),
        "tasks": {"pairs": {"kind": "classification", "text": ["premise", "hypothesis"], "label": "relation",
                            "labels": ["other", "same"], "files": {"train": "data/train.jsonl", "dev": "data/dev.jsonl"},
                            "metrics": {"accuracy": "accuracy", "mcc": "matthews"}, "display": "pairs"}},
        "base": {"model": {"encoder": str(encoder)}, "data": {"max_length": 24, "train_eval_examples": 8},
                 "train": {"epochs": 1, "lr": 1e-3, "batch_size": {"pairs": 8}},
                 "prune": {"calibration_examples": 8},
                 "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"}},
        "grid": {"tasks": ["pairs"], "seeds": [0], **grid},
        "resources": {"cpus_per_trial": 1},
    }
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def finished_trials(folder: Path, name: str) -> list:
    client = mlflow.MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    return [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("mode") != "sweep"]


def test_sweep_over_a_declared_task_end_to_end(tiny_encoder_dir, tmp_path, capsys):
    path = sweep_file(tmp_path, tiny_encoder_dir, "declared", methods=["magnitude"], sparsities=[0.5])
    assert sweep(["--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "best dev metric (dev/overall: pairs accuracy)" in out
    runs = finished_trials(tmp_path, "declared")
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)  # dense fine-tune, pruning trial
    assert {r.data.tags["task"] for r in runs} == {"pairs"} and {r.data.tags["task_metric"] for r in runs} == {
        "pairs accuracy"}
    assert all({"dev/accuracy", "dev/mcc", "dev/overall"} <= set(r.data.metrics) for r in runs)
    published = next((tmp_path / "ray" / "declared").glob("*/analysis/report.md")).read_text()
    assert "pairs accuracy" in published and "SST" not in published
    assert analyse(["--experiment", "declared", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                    "--out", str(tmp_path / "report")]) == 0
    assert "pairs accuracy" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_one_trial_sweep_per_encoder_family(family, tokenizer, tmp_path):
    config_class, arguments, model_class = FAMILIES[family]
    encoder = tmp_path / family
    torch.manual_seed(0)
    model_class(config_class(**arguments)).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    path = sweep_file(tmp_path, encoder, family, methods=["heads"], sparsities=[0.25], mode="early_bird",
                      criteria={"heads": "taylor"})
    assert sweep(["--config", str(path), "prune.early_bird_interval=1", "prune.early_bird_max_steps=2"]) == 0
    (run,) = finished_trials(tmp_path, family)  # one trial: fine-tune, draw the ticket, prune heads, go on
    assert run.info.status == "FINISHED" and run.data.tags["mode"] == "early_bird"
    assert run.data.metrics["achieved_sparsity"] > 0 and "dev/mcc" in run.data.metrics
