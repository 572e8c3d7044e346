"""Models saved by ticketbert 0.1.0 (tests/data/saved_0_1_0, written by its make.py with that
version) load with this one and give the outputs 0.1.0 recorded."""

from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import BertForSequenceClassification

import ticketbert
from ticketbert.data import Batch

SAVED = Path(__file__).resolve().parent / "data" / "saved_0_1_0"
IDS = torch.tensor([[2, 5, 9, 17, 33, 65, 3, 0], [2, 7, 11, 13, 3, 0, 0, 0]])
MASK = (IDS != 0).long()


def test_models_saved_by_0_1_0_load_with_the_same_outputs():
    expected = load_file(str(SAVED / "outputs.safetensors"))
    multitask = ticketbert.load_pruned(SAVED / "multitask").eval()
    assert [layer.intermediate.dense.out_features for layer in multitask.encoder.encoder.layer] == [31, 30]
    with torch.no_grad():
        got = multitask("sst", Batch(IDS, MASK, torch.zeros_like(IDS), torch.tensor([1, 3]), 1))
    torch.testing.assert_close(got, expected["multitask.sst"])
    for name in ("masked", "heads"):
        model = ticketbert.load_pruned(SAVED / name).eval()
        assert type(model) is BertForSequenceClassification
        with torch.no_grad():
            torch.testing.assert_close(model(input_ids=IDS, attention_mask=MASK).logits, expected[name])
    masked = ticketbert.load_pruned(SAVED / "masked")
    weight = masked.bert.encoder.layer[0].attention.self.query.weight
    assert 0.3 < float((weight == 0).float().mean()) < 0.7  # the masks stay enforced
