"""Shared fixtures: a tiny random BERT (with the bundled tokenizer) and small task data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from ticketbert.config import DEFAULT_ENCODER, ModelConfig, load_config
from ticketbert.data import encode_task, read_task
from ticketbert.models import load_tokenizer
from ticketbert.tasks import shipped_definitions
from ticketbert.tasks.model import build_model

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
os.environ.setdefault("TQDM_DISABLE", "1")


def tiny_config(**overrides) -> BertConfig:
    settings = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=0.1,
                    attention_probs_dropout_prob=0.1)
    settings.update(overrides)
    return BertConfig(**settings)


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer(DEFAULT_ENCODER)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, tokenizer) -> Path:
    """A directory holding a tiny random BertModel and the MiniLM tokenizer."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    BertModel(tiny_config(), add_pooling_layer=False).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def tiny_run_config(tiny_encoder_dir, tmp_path):
    """A RunConfig for fast runs: tiny model, synthetic data, local MLflow store in tmp."""
    return load_config(None, [
        f"model.encoder={tiny_encoder_dir}", "data.source=synthetic", "data.synthetic_examples=48",
        "data.train_eval_examples=16", "train.epochs=2", "train.lr=1e-3", "train.progress=false",
        "train.batch_size={sst: 8, para: 8, sts: 8}", f"output_dir={tmp_path / 'runs'}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
    ])


@pytest.fixture
def tiny_task_data(tiny_run_config, tokenizer):
    """Encoded synthetic data of all three tasks."""
    config = tiny_run_config
    return {name: encode_task(read_task(config.data, name, shipped_definitions()[name]), tokenizer, config.data)
            for name in ("sst", "para", "sts")}


@pytest.fixture
def tiny_model(tiny_encoder_dir, tiny_task_data):
    """A multitask TicketBertModel over the tiny encoder, in eval mode, seeded heads."""
    torch.manual_seed(1)
    tasks = [tiny_task_data[name].task for name in ("sst", "para", "sts")]
    model = build_model(ModelConfig(encoder=str(tiny_encoder_dir), dropout=0.0), tasks)
    return model.eval()
