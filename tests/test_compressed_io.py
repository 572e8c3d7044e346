"""Compressed storage of pruned models: kept values + bitmask, round trips and bytes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification, BertModel

from ticketbert.data import collate
from ticketbert.models.compute import effective_weight, prunable_linears
from ticketbert.pruning import attached_masks, load_pruned, make_calibration, prune, save_pruned
from ticketbert.pruning.oneshot import oneshot_prune
from ticketbert.pruning.sparse_storage import SPARSE_FILE, pack_bits, storage_report, unpack_bits


@pytest.mark.parametrize("count", [1, 7, 8, 9, 64, 101])
def test_bits_round_trip(count):
    flags = torch.rand(count, generator=torch.Generator().manual_seed(count)) > 0.5
    packed = pack_bits(flags)
    assert packed.dtype == torch.uint8 and packed.numel() == -(-count // 8)
    assert torch.equal(unpack_bits(packed, count), flags)


def test_bits_are_msb_first():
    assert pack_bits(torch.tensor([True] + [False] * 6 + [True])).tolist() == [129]


def task_outputs(model, data, pad_id):
    with torch.no_grad():
        return {task: model(task, collate(data[task].dev, list(range(6)), pad_id)) for task in model.tasks}


@pytest.mark.parametrize("method,kwargs", [("wanda", dict(sparsity=0.5)), ("sparsegpt", dict(pattern="2:4"))])
def test_ticketbert_model_compressed_round_trip(tiny_model, tiny_task_data, tokenizer, tmp_path, method, kwargs):
    pad = tokenizer.pad_token_id
    oneshot_prune(tiny_model, method, data=make_calibration(tiny_task_data, 8, pad_id=pad), **kwargs)
    expected = task_outputs(tiny_model, tiny_task_data, pad)
    compressed = save_pruned(tiny_model, tmp_path / "compressed", compress=True)
    dense = save_pruned(tiny_model, tmp_path / "dense")
    assert (compressed / "encoder" / SPARSE_FILE).is_file() and not (compressed / "encoder" / "masks.safetensors").exists()
    reloaded = load_pruned(compressed).eval()
    for task, out in task_outputs(reloaded, tiny_task_data, pad).items():
        torch.testing.assert_close(out, expected[task], atol=1e-6, rtol=1e-6)
    masks, again = attached_masks(tiny_model), attached_masks(reloaded)
    assert masks.keys() == again.keys() and all(torch.equal(masks[k], again[k]) for k in masks)
    report, plain = storage_report(compressed), storage_report(dense)
    matrices = sum(effective_weight(m).numel() * 4 for m in prunable_linears(tiny_model).values())
    assert report.matrices_dense_bytes == matrices
    assert report.matrices_ratio <= 0.535
    assert report.file_bytes < plain.file_bytes
    assert plain.matrices_dense_bytes == plain.matrices_stored_bytes == 0


def test_hf_task_model_compressed_round_trip_and_default_stays_from_pretrained(tmp_path):
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                                     num_attention_heads=4, intermediate_size=64)).eval()
    prune(model, "magnitude", 0.5)
    batch = {"input_ids": torch.randint(0, 100, (3, 9), generator=torch.Generator().manual_seed(1))}
    expected = model(**batch).logits.detach()
    reloaded = load_pruned(save_pruned(model, tmp_path / "c", compress=True)).eval()
    assert type(reloaded) is BertForSequenceClassification
    torch.testing.assert_close(reloaded(**batch).logits, expected, atol=1e-6, rtol=1e-6)
    assert storage_report(tmp_path / "c").matrices_ratio <= 0.535
    plain = BertForSequenceClassification.from_pretrained(save_pruned(model, tmp_path / "d")).eval()
    torch.testing.assert_close(plain(**batch).logits, expected, atol=1e-6, rtol=1e-6)


def test_plain_module_compressed_round_trip(tmp_path):
    torch.manual_seed(0)
    build = lambda: nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))  # noqa: E731
    model = build()
    prune(model, "magnitude", 0.7)
    x = torch.randn(5, 16)
    save_pruned(model, tmp_path / "m", compress=True)
    reloaded = load_pruned(tmp_path / "m", model=build())
    torch.testing.assert_close(reloaded(x), model(x))
    assert attached_masks(reloaded).keys() == attached_masks(model).keys()
    assert storage_report(tmp_path / "m").matrices_ratio <= 0.3 + 1 / 32 + 1e-3


def test_unmasked_model_compressed_is_the_plain_save(tmp_path):
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                   intermediate_size=64), add_pooling_layer=False).eval()
    path = save_pruned(encoder, tmp_path / "e", compress=True)
    assert not (path / SPARSE_FILE).exists()
    assert type(BertModel.from_pretrained(path)) is BertModel
