"""ticketbert as a library in other people's projects: Hugging Face task models, any nn.Module,
the user's own data and loss, their optimizer across structured removal."""

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune
from transformers import BertForSequenceClassification

import ticketbert
from conftest import tiny_config
from ticketbert.models.families import find_encoder
from ticketbert.models.structure import STRUCTURE_KEY
from ticketbert.pruning import UnitPlan, apply
from ticketbert.pruning.units import UNIT_KINDS


def classifier(seed=0):
    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_config(num_labels=3, hidden_dropout_prob=0.0,
                                                     attention_probs_dropout_prob=0.0)).eval()


def batches(count=3, size=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        ids = torch.randint(1000, 2000, (size, 9), generator=generator)
        mask = torch.ones_like(ids)
        mask[0, 6:] = 0
        out.append({"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 3, (size,), generator=generator)})
    return out


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4))


# -- models ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["heads", "ffn", "layers"])
def test_hf_task_model_is_pruned_physically_and_keeps_working(method):
    model = classifier()
    before = model(**batches(1)[0]).logits
    report = ticketbert.prune(model, method, 0.3, criterion="l1")
    assert report.flops_per_token_after < report.flops_per_token_before
    assert STRUCTURE_KEY in model.config.to_dict()
    assert model.classifier.weight.shape == (3, 32)  # the task head is left alone
    after = model(**batches(1)[0]).logits
    assert after.shape == before.shape and torch.isfinite(after).all()


def test_magnitude_on_any_module_equals_torch_global_unstructured():
    ours, theirs = mlp(), mlp()
    report = ticketbert.prune(ours, "magnitude", 0.6)
    linears = [m for m in theirs if isinstance(m, nn.Linear)]
    torch_prune.global_unstructured([(m, "weight") for m in linears], pruning_method=torch_prune.L1Unstructured,
                                    amount=0.6)
    assert sorted(report.masks) == ["0.weight", "2.weight", "4.weight"]
    for index, module in zip((0, 2, 4), linears):
        assert torch.equal(report.masks[f"{index}.weight"], module.weight_mask.bool())
    x = torch.randn(5, 10)
    torch.testing.assert_close(ours(x), theirs(x))


def test_magnitude_name_patterns_select_the_weights():
    report = ticketbert.prune(mlp(), "magnitude", 0.5, exclude=["4"])
    assert sorted(report.masks) == ["0.weight", "2.weight"]
    with pytest.raises(ValueError, match="exclude: no module of Sequential matches 'head'"):
        ticketbert.prune(mlp(), "magnitude", 0.5, exclude=["head"])


def test_structured_on_a_plain_module_names_the_supported_families():
    with pytest.raises(TypeError, match=r"method 'heads' needs a Hugging Face encoder \(.*bert.*\) inside the model; "
                                        r"Sequential holds none"):
        ticketbert.prune(mlp(), "heads", 0.2, criterion="l1")


def test_whole_task_model_round_trips(tmp_path):
    model = classifier()
    ticketbert.prune(model, "heads", 0.2, criterion="l1")
    ticketbert.prune(model, "magnitude", 0.4)
    batch = batches(1)[0]
    expected = model(**batch).logits
    reloaded = ticketbert.load_pruned(ticketbert.save_pruned(model, tmp_path / "m"))
    assert type(reloaded) is BertForSequenceClassification
    torch.testing.assert_close(reloaded(**batch).logits, expected, atol=1e-5, rtol=1e-5)


def test_plain_module_round_trips_with_its_masks(tmp_path):
    model = mlp()
    ticketbert.prune(model, "magnitude", 0.5)
    ticketbert.save_pruned(model, tmp_path / "m")
    reloaded = ticketbert.load_pruned(tmp_path / "m", model=mlp(seed=1))
    x = torch.randn(3, 10)
    torch.testing.assert_close(reloaded(x), model(x))
    assert float((reloaded[0].weight == 0).float().mean()) > 0.3
    with pytest.raises(FileNotFoundError, match="load_pruned\\(path, model=<an instance>\\)"):
        ticketbert.load_pruned(tmp_path / "m")


# -- criteria with the user's data and loss ---------------------------------------------------------

EPS = 2.0 ** -10


def test_taylor_with_a_user_loss_matches_central_finite_differences():
    model = classifier().double()
    data = batches(2)

    def loss_fn(m, batch):  # the user's own loss: a squared margin, nothing the HF head computes
        logits = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return ((logits - logits.mean()) ** 2).mean()

    encoder = find_encoder(model)
    for kind in ("heads", "ffn"):
        taylor = ticketbert.score(model, kind, "taylor", data, loss_fn=loss_fn).values
        with UNIT_KINDS[kind].gates(encoder) as gates:
            for layer, unit in [(0, 1), (1, len(gates[1]) - 1)]:
                # taylor: sum over batches of |d loss_b / d gate|, weighted by batch share (4 of 8 each)
                per_batch = []
                for b in data:
                    values = []
                    for delta in (EPS, -EPS):  # exact in the float32 gate
                        with torch.no_grad():
                            gates[layer][unit] = 1.0 + delta
                            values.append(float(loss_fn(model, b)))
                    with torch.no_grad():
                        gates[layer][unit] = 1.0
                    per_batch.append(abs(values[0] - values[1]) / (2 * EPS) * 0.5)
                assert float(taylor[layer][unit]) == pytest.approx(sum(per_batch), rel=1e-4), (kind, layer, unit)


def test_default_loss_is_the_hf_models_own_loss():
    model = classifier()
    data = batches(2)
    ours = ticketbert.score(model, "heads", "loss_increment", data).values
    explicit = ticketbert.score(model, "heads", "loss_increment", data,
                                loss_fn=lambda m, b: m(**b).loss).values
    for a, b in zip(ours, explicit):
        torch.testing.assert_close(a, b)


def test_a_data_criterion_without_data_says_so():
    with pytest.raises(ValueError, match="criterion 'taylor' measures a loss: pass data=.*or use criterion='l1'"):
        ticketbert.prune(classifier(), "heads", 0.2)


# -- the user's optimizer across structured removal -------------------------------------------------

def _train_step(model, optimizer, batch):
    model(**batch).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _kept(total, removed, width=1):
    return torch.tensor([u * width + j for u in range(total) if u not in removed for j in range(width)])


@pytest.mark.parametrize("make_optimizer", [
    lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=0.01),
    lambda params: torch.optim.SGD(params, lr=1e-2, momentum=0.9),
], ids=["adamw", "sgd-momentum"])
def test_optimizer_state_is_sliced_so_training_continues_as_if_built_small(make_optimizer):
    data = batches(4)
    model = classifier()
    optimizer = make_optimizer(model.parameters())
    for batch in data[:3]:
        _train_step(model, optimizer, batch)
    state_before = {name: {k: v.clone() for k, v in optimizer.state[p].items()} for name, p in model.named_parameters()}

    removed_heads, removed_neurons = {0: [1, 3]}, {1: list(range(0, 64, 2))}
    apply(model, UnitPlan("heads", "l1", 0.0, removed_heads), optimizer=optimizer)
    apply(model, UnitPlan("ffn", "l1", 0.0, removed_neurons), optimizer=optimizer)
    _train_step(model, optimizer, data[3])

    # independently: a model built small from the start, its state sliced here by hand
    small = BertForSequenceClassification(copy.deepcopy(model.config)).eval()
    encoder = find_encoder(small)
    for i, (heads, width) in enumerate(zip(model.config.ticketbert_structure["heads_per_layer"],
                                           model.config.ticketbert_structure["intermediate_sizes"])):
        UNIT_KINDS["heads"].remove(encoder, {i: list(range(heads, 4))})
        UNIT_KINDS["ffn"].remove(encoder, {i: list(range(width, 64))})
    reference = classifier()
    ref_optimizer = make_optimizer(reference.parameters())
    for batch in data[:3]:
        _train_step(reference, ref_optimizer, batch)
    heads_rows = _kept(4, removed_heads[0], width=8)
    neurons = _kept(64, removed_neurons[1])
    slices = {"bert.encoder.layer.0.attention.self.query": (0, heads_rows), "bert.encoder.layer.0.attention.self.key":
              (0, heads_rows), "bert.encoder.layer.0.attention.self.value": (0, heads_rows),
              "bert.encoder.layer.0.attention.output.dense": (1, heads_rows),
              "bert.encoder.layer.1.intermediate.dense": (0, neurons), "bert.encoder.layer.1.output.dense": (1, neurons)}

    def cut(name, tensor):
        module, _, kind = name.rpartition(".")
        if module in slices and not (kind == "bias" and slices[module][0] == 1):
            dim, index = slices[module]
            return tensor.index_select(dim, index)
        return tensor

    with torch.no_grad():
        for name, param in small.named_parameters():
            param.copy_(cut(name, dict(reference.named_parameters())[name]))
    small_optimizer = make_optimizer(small.parameters())
    small_optimizer.load_state_dict({
        "state": {i: {k: (cut(name, v) if v.ndim else v) for k, v in state_before[name].items()}
                  for i, (name, _) in enumerate(small.named_parameters())},
        "param_groups": small_optimizer.state_dict()["param_groups"]})
    _train_step(small, small_optimizer, data[3])
    for (name, ours), (_, theirs) in zip(model.named_parameters(), small.named_parameters()):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5, msg=name)


def test_removed_layers_and_emptied_attention_leave_the_optimizer():
    model = classifier()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    _train_step(model, optimizer, batches(1)[0])
    apply(model, UnitPlan("heads", "l1", 0.0, {0: [0, 1, 2, 3]}), optimizer=optimizer)
    apply(model, UnitPlan("layers", "l1", 0.0, {1: [0]}), optimizer=optimizer)
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert in_optimizer == {id(p) for p in model.parameters()}
    assert set(map(id, optimizer.state)) <= in_optimizer
    _train_step(model, optimizer, batches(1, seed=1)[0])


# -- EarlyBirdPruner in anyone's loop ----------------------------------------------------------------

def test_early_bird_pruner_checks_its_arguments_up_front():
    model = classifier()
    with pytest.raises(ValueError, match=r"method 'heads' can remove at most 50.0% of this model's prunable weights"):
        ticketbert.EarlyBirdPruner("heads", 0.6, criterion="l1", model=model)
    with pytest.raises(ValueError, match="criterion 'taylor' draws masks from a loss: pass data="):
        ticketbert.EarlyBirdPruner("ffn", 0.3, draws="calibration")
    with pytest.raises(ValueError, match="unknown pruning method 'rows'"):
        ticketbert.EarlyBirdPruner("rows", 0.3)
    with pytest.raises(ValueError, match="epsilon in \\(0, 1\\]; got interval 5, window 2, epsilon 0"):
        ticketbert.EarlyBirdPruner("heads", 0.3, criterion="l1", interval=5, window=2, epsilon=0)
    with pytest.raises(TypeError, match="data must be an iterable of batches"):
        ticketbert.EarlyBirdPruner("heads", 0.3, data=42)


def test_early_bird_in_a_plain_loop_prunes_and_training_goes_on():
    model = classifier()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = batches(2)
    pruner = ticketbert.EarlyBirdPruner("ffn", 0.3, criterion="taylor", draws="calibration", data=data, interval=2,
                                        window=2, epsilon=0.5, max_steps=8, model=model)
    widths = []
    for step in range(12):
        _train_step(model, optimizer, batches(1, seed=step)[0])
        if pruner.step(model) and pruner.plan is not None and not widths:
            report = pruner.prune(model, optimizer=optimizer)
            widths = [layer.intermediate.dense.out_features for layer in model.bert.encoder.layer]
    assert pruner.found_at is not None and pruner.found_at <= 8
    assert sum(widths) < 128 and report.achieved_sparsity == pytest.approx(0.3, abs=0.02)
    assert pruner.scoring_flops > 0


def test_magnitude_on_a_model_of_another_family_prunes_its_linear_layers(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=4)).eval()
    report = ticketbert.prune(model, "magnitude", 0.5)
    assert len(report.masks) == 2 * 4  # c_attn, c_proj, c_fc, mlp c_proj per block; lm_head is tied to wte
    assert report.achieved_sparsity == pytest.approx(0.5, abs=1e-4)
    ids = torch.randint(0, 64, (2, 8))
    expected = model(input_ids=ids).logits
    reloaded = ticketbert.load_pruned(ticketbert.save_pruned(model, tmp_path / "gpt2"))
    torch.testing.assert_close(reloaded(input_ids=ids).logits, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="model type 'gpt2' is not a supported encoder family"):
        ticketbert.prune(model, "heads", 0.2, criterion="l1")
