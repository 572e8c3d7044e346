"""Writes the models in this folder with ticketbert 0.1.0 (run it with that version importable, from any folder:
``git worktree add /tmp/v010 <the 0.1.0 commit>; PYTHONPATH=/tmp/v010 python make.py``).
tests/test_compat.py checks that the current version loads them and gives the same outputs."""

import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForSequenceClassification, BertModel

import ticketbert
from ticketbert.config import ModelConfig
from ticketbert.data import Batch
from ticketbert.models import build_model

HERE = Path(__file__).resolve().parent
CONFIG = dict(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
              max_position_embeddings=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
IDS = torch.tensor([[2, 5, 9, 17, 33, 65, 3, 0], [2, 7, 11, 13, 3, 0, 0, 0]])
MASK = (IDS != 0).long()


def main() -> None:
    torch.manual_seed(0)
    encoder_dir = Path("tiny-bert")  # recorded in multitask/ticketbert.json as the encoder it was built from
    BertModel(BertConfig(**CONFIG), add_pooling_layer=False).save_pretrained(encoder_dir)
    outputs = {}
    # ticketbert's multitask model, heads and FFN neurons removed
    model = build_model(ModelConfig(encoder=str(encoder_dir), dropout=0.0), ["sst", "para", "sts"]).eval()
    ticketbert.prune(model, "heads", 0.1, criterion="l1")
    ticketbert.prune(model, "ffn", 0.3, criterion="l1")
    ticketbert.save_pruned(model, HERE / "multitask")
    batch = Batch(IDS, MASK, torch.zeros_like(IDS), torch.tensor([1, 3]), 1)
    with torch.no_grad():
        outputs["multitask.sst"] = model("sst", batch)
    # a Hugging Face classifier, unstructured magnitude masks
    classifier = BertForSequenceClassification(BertConfig(**CONFIG, num_labels=3)).eval()
    ticketbert.prune(classifier, "magnitude", 0.5)
    ticketbert.save_pruned(classifier, HERE / "masked")
    # a Hugging Face classifier, heads removed
    heads = BertForSequenceClassification(BertConfig(**CONFIG, num_labels=3)).eval()
    ticketbert.prune(heads, "heads", 0.2, criterion="l1")
    ticketbert.save_pruned(heads, HERE / "heads")
    with torch.no_grad():
        outputs["masked"] = classifier(input_ids=IDS, attention_mask=MASK).logits
        outputs["heads"] = heads(input_ids=IDS, attention_mask=MASK).logits
    save_file({k: v.contiguous() for k, v in outputs.items()}, str(HERE / "outputs.safetensors"))
    shutil.rmtree(encoder_dir)


if __name__ == "__main__":
    os.chdir(HERE)
    main()
