"""The pruning engine against independent computations."""

import copy

import pytest
import torch
from torch.nn.utils import prune as torch_prune
from transformers import BertModel

from conftest import tiny_config
from ticketbert.data import collate
from ticketbert.models.compute import count_prunable, prunable_linears
from ticketbert.pruning import (apply, attached_masks, load_pruned, make_calibration, plan, prune, save_pruned,
                                score)
from ticketbert.models.families import find_encoder
from ticketbert.pruning.units import UNIT_KINDS
from ticketbert.training.loop import fit


def unit_gates(model, kind):
    return UNIT_KINDS[kind].gates(find_encoder(model))


def remove_units(model, kind, removed):
    return UNIT_KINDS[kind].remove(find_encoder(model), removed)


def units_per_layer(model, kind):
    return UNIT_KINDS[kind].counts(find_encoder(model))


def random_bert(seed=0, **overrides):
    torch.manual_seed(seed)
    return BertModel(tiny_config(**overrides), add_pooling_layer=False).eval()


def encoder_output(encoder, seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 2000, (3, 11), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    with torch.no_grad():
        return encoder(input_ids=ids, attention_mask=mask).last_hidden_state


# -- unstructured magnitude ----------------------------------------------------------------------

@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.77])
def test_global_magnitude_masks_equal_torch_global_unstructured(sparsity):
    ours, theirs = random_bert(), random_bert()
    report = prune(ours, "magnitude", sparsity)
    targets = [(m, "weight") for m in prunable_linears(theirs).values()]
    torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured, amount=sparsity)
    expected = {f"{n}.weight": m.weight_mask.bool() for n, m in prunable_linears(theirs).items()}
    assert report.masks.keys() == expected.keys()
    for name, mask in expected.items():
        assert torch.equal(report.masks[name], mask), name
    total = count_prunable(ours, nonzero=False)
    assert abs(report.achieved_sparsity - sparsity) <= 1 / total


def test_layer_scope_magnitude_masks_equal_torch_l1_unstructured():
    ours, theirs = random_bert(), random_bert()
    report = prune(ours, "magnitude", 0.4, scope="layer")
    for name, module in prunable_linears(theirs).items():
        torch_prune.l1_unstructured(module, "weight", amount=0.4)
        assert torch.equal(report.masks[f"{name}.weight"], module.weight_mask.bool()), name


def test_masks_survive_training_steps(tiny_model, tiny_task_data, tiny_run_config, tokenizer):
    report = prune(tiny_model, "magnitude", 0.5)
    before = {n: m.weight_orig.detach().clone() for n, m in prunable_linears(tiny_model.encoder).items()}
    train = tiny_run_config.train.model_copy(update={"epochs": 1, "tasks": ["sst"], "lr": 1e-2})
    fit(tiny_model, {"sst": tiny_task_data["sst"]}, train, pad_id=tokenizer.pad_token_id)
    changed = False
    for name, module in prunable_linears(tiny_model.encoder).items():
        mask = report.masks[f"{name}.weight"]
        assert torch.all(module.weight[~mask] == 0), name
        changed |= not torch.equal(module.weight_orig[mask], before[name][mask])
    assert changed, "training did not move the kept weights"


def test_magnitude_rejects_other_criteria():
    with pytest.raises(ValueError, match="method 'magnitude' ranks units by l1; got criterion 'taylor'"):
        prune(random_bert(), "magnitude", 0.5, criterion="taylor")


# -- structured units ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind, removed", [
    ("heads", {0: [1, 3], 1: [0]}),
    ("heads", {0: [0, 1, 2, 3]}),  # every head of a layer: attention becomes a pass-through
    ("ffn", {0: list(range(0, 64, 3)), 1: [5]}),
    ("ffn", {1: list(range(64))}),
    ("layers", {1: [0]}),
])
def test_gated_equals_physically_removed(kind, removed):
    encoder = random_bert()
    with unit_gates(encoder, kind) as gates:
        with torch.no_grad():
            for layer, units in removed.items():
                gates[layer][units] = 0.0
        masked = encoder_output(encoder)
    remove_units(encoder, kind, removed)
    torch.testing.assert_close(encoder_output(encoder), masked, atol=1e-5, rtol=1e-5)
    counts = units_per_layer(encoder, kind)
    if kind != "layers":
        assert counts == [n - len(removed.get(i, [])) for i, n in enumerate(units_per_layer(random_bert(), kind))]


def test_all_heads_removed_layer_still_runs_and_reloads(tmp_path):
    encoder = random_bert()
    remove_units(encoder, "heads", {0: [0, 1, 2, 3], 1: [2]})
    assert encoder.config.ticketbert_structure["heads_per_layer"] == [0, 3]
    out = encoder_output(encoder)
    reloaded = load_pruned(save_pruned(encoder, tmp_path / "p"))
    torch.testing.assert_close(encoder_output(reloaded), out, atol=1e-5, rtol=1e-5)


def test_exact_loss_increment_equals_ablation_definition(tiny_model, tiny_task_data, tokenizer):
    calibration = make_calibration(tiny_task_data, 12, pad_id=tokenizer.pad_token_id, batch_size=5)
    scores = score(tiny_model, "heads", "loss_increment", calibration)
    base = calibration.loss(tiny_model)
    for layer, head in [(0, 2), (1, 0)]:
        ablated = copy.deepcopy(tiny_model)
        remove_units(ablated.encoder, "heads", {layer: [head]})
        assert float(scores.values[layer][head]) == pytest.approx(calibration.loss(ablated) - base, abs=1e-5)
    layers = score(tiny_model, "layers", "loss_increment", calibration)
    ablated = copy.deepcopy(tiny_model)
    remove_units(ablated.encoder, "layers", {0: [0]})
    assert float(layers.values[0][0]) == pytest.approx(calibration.loss(ablated) - base, abs=1e-5)


def test_taylor_scores_match_finite_differences(tiny_model, tiny_task_data, tokenizer):
    model = tiny_model.double()
    calibration = make_calibration({"sts": tiny_task_data["sts"]}, 8, pad_id=tokenizer.pad_token_id, batch_size=8)
    for kind in ("heads", "ffn", "layers"):
        taylor = score(model, kind, "taylor", calibration).values
        eps = 1e-3
        with unit_gates(model.encoder, kind) as gates:
            for layer, unit in [(0, 0), (1, len(gates[1]) - 1)]:
                losses = []
                for delta in (eps, -eps):
                    with torch.no_grad():
                        gates[layer][unit] = 1.0 + delta
                    losses.append(calibration.loss(model))
                with torch.no_grad():
                    gates[layer][unit] = 1.0
                derivative = (losses[0] - losses[1]) / (2 * eps)
                assert float(taylor[layer][unit]) == pytest.approx(abs(derivative), rel=1e-4, abs=1e-8), (kind, layer)


@pytest.mark.parametrize("method, criterion, sparsity", [
    ("heads", "l1", 0.2), ("heads", "taylor", 0.3), ("ffn", "l1", 0.45), ("ffn", "taylor", 0.1),
    ("layers", "l1", 0.5), ("heads", "loss_increment", 0.15),
])
def test_achieved_sparsity_within_one_unit(tiny_model, tiny_task_data, tokenizer, method, criterion, sparsity):
    data = make_calibration(tiny_task_data, 8, pad_id=tokenizer.pad_token_id)
    before = count_prunable(tiny_model.encoder, nonzero=False)
    unit = {"heads": 4 * 32 * 8, "ffn": 2 * 32, "layers": before / 2}[method]
    report = prune(tiny_model, method, sparsity, criterion=criterion, data=data)
    assert abs(report.achieved_sparsity * before - sparsity * before) <= unit
    assert report.achieved_sparsity == pytest.approx(1 - count_prunable(tiny_model.encoder, nonzero=False) / before)
    assert report.flops_per_token_after < report.flops_per_token_before or sparsity * before < unit / 2


def test_layer_scope_prunes_each_layer_alike(tiny_model):
    report = prune(tiny_model, "heads", 0.25, criterion="l1", scope="layer")  # heads hold half of tiny BERT
    assert {layer: len(units) for layer, units in report.removed.items()} == {0: 2, 1: 2}


def test_iterative_rescoring_reaches_target(tiny_model, tiny_task_data, tokenizer):
    data = make_calibration(tiny_task_data, 8, pad_id=tokenizer.pad_token_id)
    report = prune(tiny_model, "ffn", 0.4, criterion="taylor", data=data, steps=3)
    assert report.achieved_sparsity == pytest.approx(0.4, abs=2 * 32 / (2 * (4 * 32 * 32 + 2 * 32 * 64)))


def test_scores_reused_across_levels(tiny_model):
    scores = score(tiny_model, "heads", "l1")
    removed = [plan(scores, s).removed for s in (0.1, 0.2, 0.3)]
    flat = [{(i, u) for i, us in r.items() for u in us} for r in removed]
    assert flat[0] <= flat[1] <= flat[2] and len(flat[2]) > len(flat[0])


# -- errors --------------------------------------------------------------------------------------

def test_bad_arguments_are_clear_errors(tiny_model):
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\), got 1.2"):
        prune(tiny_model, "magnitude", 1.2)
    with pytest.raises(ValueError, match="unknown pruning method 'channels'"):
        prune(tiny_model, "channels", 0.1)
    with pytest.raises(ValueError, match="criterion 'loss_increment' measures a loss: pass data= .*or use criterion='l1'"):
        prune(tiny_model, "heads", 0.1, criterion="loss_increment")
    with pytest.raises(ValueError, match="unknown criterion 'entropy'"):
        prune(tiny_model, "heads", 0.1, criterion="entropy")
    with pytest.raises(ValueError, match=r"method 'heads' can remove at most 50.0% of the prunable encoder weights, "
                                         r"asked for 60.0%"):
        prune(tiny_model, "heads", 0.6, criterion="l1")
    with pytest.raises(ValueError, match="at most 50.0%"):
        prune(tiny_model, "layers", 0.8, criterion="l1")
    with pytest.raises(TypeError, match="data must be an iterable of batches .* got object"):
        prune(random_bert(), "heads", 0.1, criterion="taylor", data=object())
    with pytest.raises(TypeError, match="the default loss_fn calls model\\(\\*\\*batch\\) and needs dict batches"):
        prune(random_bert(), "heads", 0.1, criterion="taylor", data=[torch.ones(2, 3, dtype=torch.long)])
    with pytest.raises(ValueError, match="returned no loss: include 'labels'"):
        prune(random_bert(), "heads", 0.1, criterion="taylor", data=[{"input_ids": torch.ones(2, 3, dtype=torch.long)}])


# -- save / load ---------------------------------------------------------------------------------

def test_save_load_round_trip_masked_and_structured(tiny_model, tmp_path, tokenizer, tiny_task_data):
    prune(tiny_model, "heads", 0.2, criterion="l1")
    prune(tiny_model, "ffn", 0.2, criterion="l1")
    prune(tiny_model, "magnitude", 0.6)
    batch = collate(tiny_task_data["sts"].dev, list(range(6)), tokenizer.pad_token_id)
    with torch.no_grad():
        expected = {task: tiny_model(task, batch if task != "sst" else collate(
            tiny_task_data["sst"].dev, list(range(6)), tokenizer.pad_token_id)) for task in ("sst", "sts")}
    reloaded = load_pruned(save_pruned(tiny_model, tmp_path / "model")).eval()
    assert attached_masks(reloaded.encoder).keys() == attached_masks(tiny_model.encoder).keys()
    with torch.no_grad():
        for task, out in expected.items():
            got = reloaded(task, batch if task != "sst" else collate(
                tiny_task_data["sst"].dev, list(range(6)), tokenizer.pad_token_id))
            torch.testing.assert_close(got, out, atol=1e-5, rtol=1e-5)
    assert reloaded.encoder.config.ticketbert_structure == tiny_model.encoder.config.ticketbert_structure


def test_plain_bert_save_load_round_trip(tmp_path):
    encoder = random_bert()
    apply(encoder, plan(score(encoder, "ffn", "l1"), 0.3))
    prune(encoder, "magnitude", 0.5)
    out = encoder_output(encoder)
    reloaded = load_pruned(save_pruned(encoder, tmp_path / "bert"))
    assert type(reloaded) is BertModel
    torch.testing.assert_close(encoder_output(reloaded), out, atol=1e-5, rtol=1e-5)


def test_structured_limits_on_a_minilm_shaped_bert():
    encoder = random_bert(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536,
                          vocab_size=100)
    for method, sparsity, limit in (("heads", 0.4, "33.3%"), ("ffn", 0.7, "66.7%"), ("layers", 0.9, "83.3%")):
        with pytest.raises(ValueError, match=f"can remove at most {limit}"):
            prune(encoder, method, sparsity, criterion="l1")


def test_embeddings_can_be_made_prunable():
    ours, theirs = random_bert(), random_bert()
    report = prune(ours, "magnitude", 0.5, include=["embeddings.word_embeddings"])
    assert "embeddings.word_embeddings.weight" in report.masks
    targets = [(m, "weight") for m in prunable_linears(theirs).values()] + [(theirs.embeddings.word_embeddings, "weight")]
    torch_prune.global_unstructured(targets, pruning_method=torch_prune.L1Unstructured, amount=0.5)
    assert torch.equal(report.masks["embeddings.word_embeddings.weight"], theirs.embeddings.word_embeddings.weight_mask.bool())
    assert report.achieved_sparsity == pytest.approx(0.5, abs=1e-6)
    with pytest.raises(ValueError, match="include: no module of BertModel matches 'embeddings.nope'"):
        prune(random_bert(), "magnitude", 0.5, include=["embeddings.nope"])
    with pytest.raises(ValueError, match="include applies to method magnitude, not 'heads'"):
        prune(random_bert(), "heads", 0.1, criterion="l1", include=["embeddings.word_embeddings"])


def test_taylor_per_layer_normalisation(tiny_model, tiny_task_data, tokenizer):
    data = make_calibration(tiny_task_data, 8, pad_id=tokenizer.pad_token_id)
    raw = score(tiny_model, "heads", "taylor", data).values
    normalised = score(tiny_model, "heads", "taylor", data, normalize=True).values
    for r, n in zip(raw, normalised):
        assert float(n.norm()) == pytest.approx(1.0)
        torch.testing.assert_close(n, r / r.norm())
