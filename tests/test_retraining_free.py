"""Retraining-free structured pruning (issue 9): the Fisher criterion, the joint heads+FFN
budget, least-squares repair and distilled recovery, against independent computations."""

import copy
import itertools

import pytest
import torch

from conftest import tiny_config
from ticketbert.data import collate
from ticketbert.models.families import find_encoder
from ticketbert.pruning import Calibration, make_calibration, plan, prune, score
from ticketbert.pruning.calibration import task_loss
from ticketbert.pruning.units import UNIT_KINDS


def direct_fisher(model, task, split, indices, pad_id, kind):
    """Sum over examples of (d loss_example / d gate)^2, one example (one autograd call) at a time."""
    encoder = find_encoder(model)
    unit = UNIT_KINDS[kind]
    totals = [torch.zeros(n, dtype=torch.float64) for n in unit.counts(encoder)]
    with unit.gates(encoder, requires_grad=True) as gates:
        for index in indices:
            loss = task_loss(model, (task, collate(split, [index], pad_id)))
            for total, grad in zip(totals, torch.autograd.grad(loss, gates)):
                total += grad.double().pow(2)
    return totals


@pytest.mark.parametrize("kind", ["heads", "ffn", "layers"])
@pytest.mark.parametrize("task", ["sst", "sts", "para"])  # sts and para: bi-encoder batches of two segments
def test_fisher_equals_per_example_autograd(tiny_model, tiny_task_data, tokenizer, task, kind):
    model = tiny_model.double()
    pad = tokenizer.pad_token_id
    split = tiny_task_data[task].train
    indices = list(range(7))
    batches = [(task, collate(split, indices[:4], pad)), (task, collate(split, indices[4:], pad))]
    assert batches[0][1].segments == (1 if task == "sst" else 2)
    fisher = score(model, kind, "fisher", Calibration(batches, task_loss)).values
    expected = direct_fisher(model, task, split, indices, pad, kind)
    for got, want in zip(fisher, expected):
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-12)
    # the per-mini-batch variant: batch size x squared gradient of the batch's mean loss
    batch_fisher = score(model, kind, "fisher_batch", Calibration(batches, task_loss)).values
    encoder, unit = find_encoder(model), UNIT_KINDS[kind]
    want = [torch.zeros(n, dtype=torch.float64) for n in unit.counts(encoder)]
    with unit.gates(encoder, requires_grad=True) as gates:
        for batch in batches:
            for total, grad in zip(want, torch.autograd.grad(task_loss(model, batch), gates)):
                total += grad.double().pow(2) * batch[1].labels.numel()
    for got, w in zip(batch_fisher, want):
        torch.testing.assert_close(got.double(), w, rtol=1e-5, atol=1e-12)


def test_fisher_counts_its_passes(tiny_model, tiny_task_data, tokenizer):
    calibration = make_calibration(tiny_task_data, 8, pad_id=tokenizer.pad_token_id)
    fisher, taylor = (score(tiny_model, "ffn", c, calibration) for c in ("fisher", "taylor"))
    assert fisher.flops == taylor.flops > 0


# -- heads+ffn: one budget over both kinds -------------------------------------------------------

def random_values(scores, seed):
    generator = torch.Generator().manual_seed(seed)
    scores.values = {k: [torch.rand(v.numel(), generator=generator) ** 3 for v in vs] for k, vs in scores.values.items()}
    return scores


def kept_value_and_cost(scores, prune_plan, costs):
    value = cost = 0.0
    for kind in ("heads", "ffn"):
        for layer, (v, c) in enumerate(zip(scores.values[kind], costs[kind])):
            keep = [u for u in range(v.numel()) if u not in prune_plan.removed_by_kind[kind].get(layer, [])]
            value += float(v[keep].double().sum())
            cost += float(c[keep].double().sum())
    return value, cost


def brute_force(scores, costs, budget, round_to):
    """Every subset of heads x every per-layer count of kept neuron blocks (each layer's best)."""
    heads = [(layer, h) for layer, v in enumerate(scores.values["heads"]) for h in range(v.numel())]
    ffn_values = [torch.sort(v.double(), descending=True).values for v in scores.values["ffn"]]
    neuron_cost = [float(c[0]) for c in costs["ffn"]]
    best = -1.0
    counts = [range(0, v.numel() + 1, round_to) for v in ffn_values]
    for mask in itertools.product([0, 1], repeat=len(heads)):
        kept = [u for u, m in zip(heads, mask) if m]
        head_value = sum(float(scores.values["heads"][i][h]) for i, h in kept)
        head_cost = sum(float(costs["heads"][i][h]) for i, h in kept)
        if head_cost > budget + 1e-6:
            continue
        for per_layer in itertools.product(*counts):
            cost = head_cost + sum(n * c for n, c in zip(per_layer, neuron_cost))
            if cost <= budget + 1e-6:
                best = max(best, head_value + sum(float(v[:n].sum()) for v, n in zip(ffn_values, per_layer)))
    return best


@pytest.mark.parametrize("budget_kind, round_to, sparsity, seed", [
    ("flops", 16, 0.3, 0), ("flops", 16, 0.55, 1), ("weights", 16, 0.4, 2), ("flops", 32, 0.7, 3),
])
def test_joint_plan_is_the_brute_force_optimum(tiny_model, tiny_task_data, tokenizer, budget_kind, round_to,
                                               sparsity, seed):
    calibration = make_calibration(tiny_task_data, 4, pad_id=tokenizer.pad_token_id)
    scores = random_values(score(tiny_model, "heads+ffn", "fisher", calibration), seed)
    costs = scores.unit_flops if budget_kind == "flops" else scores.unit_sizes
    total = sum(float(c.sum()) for k in costs for c in costs[k])
    assert total == pytest.approx(scores.total_flops if budget_kind == "flops" else scores.total)
    prune_plan = plan(scores, sparsity, budget=budget_kind, round_to=round_to)
    value, cost = kept_value_and_cost(scores, prune_plan, costs)
    assert cost <= (1 - sparsity) * total + 1e-6
    assert value == pytest.approx(brute_force(scores, costs, (1 - sparsity) * total, round_to), rel=1e-9)
    for layer, removed in prune_plan.removed_by_kind["ffn"].items():
        assert (64 - len(removed)) % round_to == 0


def test_joint_plan_equals_full_enumeration_on_a_very_tiny_model():
    """1 layer, 2 heads, 6 neurons: every subset of the 8 units."""
    from transformers import BertModel
    torch.manual_seed(0)
    model = BertModel(tiny_config(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=6),
                      add_pooling_layer=False).eval()
    batches = [{"input_ids": torch.randint(1000, 2000, (3, 5))}]
    scores = score(model, "heads+ffn", "fisher", batches, loss_fn=lambda m, b: m(**b).last_hidden_state.pow(2).mean())
    for seed in range(5):
        random_values(scores, seed)
        units = [(k, u, float(scores.values[k][0][u]), float(scores.unit_flops[k][0][u]))
                 for k in ("heads", "ffn") for u in range(scores.values[k][0].numel())]
        for sparsity in (0.1, 0.35, 0.6, 0.9):
            budget = (1 - sparsity) * scores.total_flops
            best = max(sum(u[2] for u, m in zip(units, mask) if m)
                       for mask in itertools.product([0, 1], repeat=len(units))
                       if sum(u[3] for u, m in zip(units, mask) if m) <= budget + 1e-6)
            value, _ = kept_value_and_cost(scores, plan(scores, sparsity), scores.unit_flops)
            assert value == pytest.approx(best, rel=1e-9), (seed, sparsity)


def test_joint_prune_reports_sparsity_and_flops(tiny_model, tiny_task_data, tokenizer):
    calibration = make_calibration(tiny_task_data, 8, pad_id=tokenizer.pad_token_id)
    report = prune(tiny_model, "heads+ffn", 0.4, data=calibration)
    assert report.criterion == "fisher"
    assert 0.4 <= report.flops_reduction < 0.4 + 0.1  # one head is 1/8 of the FLOPs of tiny BERT
    assert report.metrics()["flops_reduction"] == report.flops_reduction
    removed = report.removed_by_kind
    encoder = find_encoder(tiny_model)
    assert UNIT_KINDS["heads"].counts(encoder) == [4 - len(removed["heads"].get(i, [])) for i in range(2)]
    assert UNIT_KINDS["ffn"].counts(encoder) == [64 - len(removed["ffn"].get(i, [])) for i in range(2)]
    assert 0 < report.achieved_sparsity < 1


def test_joint_cuts_keep_the_optimizer_in_step(tiny_model, tiny_task_data, tokenizer):
    calibration = make_calibration(tiny_task_data, 8, pad_id=tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=1e-3)
    task_loss(tiny_model, calibration.batches[0]).backward()
    optimizer.step()
    report = prune(tiny_model, "heads+ffn", 0.5, data=calibration, optimizer=optimizer, round_to=8)
    assert {id(c.new) for c in report.cuts} <= {id(p) for g in optimizer.param_groups for p in g["params"]}
    kinds = {c.new.shape for c in report.cuts}
    assert len(kinds) > 1
    optimizer.zero_grad()
    task_loss(tiny_model, calibration.batches[0]).backward()
    optimizer.step()  # shapes of state and parameters agree


# -- lstsq repair --------------------------------------------------------------------------------

def sublayer_error(dense, pruned, calibration, kind, layer):
    """Sum over calibration tokens of ||(W x + r)_pruned - (W x + r)_dense||^2 at one layer's
    output projection (r: the residual its block adds before LayerNorm; bias excluded), measured
    with hooks on the two models."""
    outputs, handles = {}, []
    for name, model in (("dense", dense), ("pruned", pruned)):
        encoder = find_encoder(model)
        linear = UNIT_KINDS[kind].output_projection(encoder, layer)
        block = UNIT_KINDS[kind].output_block(encoder, layer)
        handles.append(block.register_forward_pre_hook(lambda m, args, name=name: outputs.__setitem__(name, args[1])))
        handles.append(linear.register_forward_hook(
            lambda m, args, out, name=name: outputs.__setitem__(name, outputs[name] + out - m.bias)))
    error = 0.0
    with torch.no_grad():
        for batch in calibration.batches:
            task_loss(dense, batch), task_loss(pruned, batch)
            mask = batch[1].attention_mask.bool()
            error += float((outputs["pruned"] - outputs["dense"])[mask].double().pow(2).sum())
    for handle in handles:
        handle.remove()
    return error


def joint_plan(model, calibration, sparsity=0.45):
    return plan(score(model, "heads+ffn", "fisher", calibration), sparsity, round_to=8)


def test_repair_leaves_unpruned_layers_unchanged(tiny_model, tiny_task_data, tokenizer):
    from ticketbert.pruning import JointPlan, apply
    calibration = make_calibration(tiny_task_data, 8, pad_id=tokenizer.pad_token_id)
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    nothing = JointPlan("heads+ffn", "fisher", 0.0, {"heads": {}, "ffn": {}})
    report = apply(tiny_model, nothing, repair="lstsq", data=calibration)
    assert report.repair.scales == {}
    assert all(torch.equal(v, before[k]) for k, v in tiny_model.state_dict().items())
    # pruning layer 1 only: layer 0 (nothing pruned in or before it) keeps its weights exactly
    only_last = JointPlan("heads+ffn", "fisher", 0.1, {"heads": {1: [2]}, "ffn": {1: list(range(16))}})
    apply(tiny_model, only_last, repair="lstsq", data=calibration)
    for name, value in tiny_model.state_dict().items():
        if "layer.0." in name:
            assert torch.equal(value, before[name]), name
    assert set(UNIT_KINDS["heads"].counts(find_encoder(tiny_model))) == {4, 3}


def test_repair_lowers_each_layer_error_on_calibration_data(tiny_model, tiny_task_data, tokenizer):
    calibration = make_calibration(tiny_task_data, 16, pad_id=tokenizer.pad_token_id)
    prune_plan = joint_plan(tiny_model, calibration)
    plain, repaired = copy.deepcopy(tiny_model), copy.deepcopy(tiny_model)
    from ticketbert.pruning import apply
    apply(plain, prune_plan)
    report = apply(repaired, prune_plan, repair="lstsq", data=calibration)
    assert report.repair.error_after and all(report.repair.error_after[s] < report.repair.error_before[s]
                                             for s in report.repair.error_after)
    # layer 0's attention sees the same inputs in all three models: its error is measured directly
    assert prune_plan.removed_by_kind["heads"].get(0)
    plain_error = sublayer_error(tiny_model, plain, calibration, "heads", 0)
    repaired_error = sublayer_error(tiny_model, repaired, calibration, "heads", 0)
    assert repaired_error < plain_error
    assert plain_error == pytest.approx(report.repair.error_before[(0, "heads")], rel=1e-3)
    assert repaired_error == pytest.approx(report.repair.error_after[(0, "heads")], rel=1e-3)
    # and the repaired model's calibration loss moves towards the dense one
    assert abs(calibration.loss(repaired) - calibration.loss(tiny_model)) < abs(
        calibration.loss(plain) - calibration.loss(tiny_model))


def test_folded_repair_equals_scaled_gates_after_removal(tiny_model, tiny_task_data, tokenizer, tmp_path):
    from ticketbert.pruning import apply, load_pruned, save_pruned
    calibration = make_calibration(tiny_task_data, 16, pad_id=tokenizer.pad_token_id)
    prune_plan = joint_plan(tiny_model, calibration)
    gated = copy.deepcopy(tiny_model)
    report = apply(tiny_model, prune_plan, repair="lstsq", data=calibration)
    assert report.repair.scales
    encoder = find_encoder(gated)
    batch = collate(tiny_task_data["sts"].dev, list(range(6)), tokenizer.pad_token_id)
    with UNIT_KINDS["heads"].gates(encoder) as heads, UNIT_KINDS["ffn"].gates(encoder) as ffn, torch.no_grad():
        for kind, gates in (("heads", heads), ("ffn", ffn)):
            for layer, gate in enumerate(gates):
                removed = prune_plan.removed_by_kind[kind].get(layer, [])
                kept = [u for u in range(gate.numel()) if u not in removed]
                gate[removed] = 0.0
                if layer in report.repair.scales.get(kind, {}):
                    gate[kept] = report.repair.scales[kind][layer]
        expected = {task: gated(task, batch) for task in ("sts", "para")}
    with torch.no_grad():
        for task, want in expected.items():
            torch.testing.assert_close(tiny_model(task, batch), want, atol=1e-5, rtol=1e-5)
    reloaded = load_pruned(save_pruned(tiny_model, tmp_path / "repaired"))
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()("sts", batch), expected["sts"], atol=1e-5, rtol=1e-5)


def test_ill_conditioned_layer_is_left_unrepaired_with_a_warning(tiny_model, tiny_task_data, tokenizer):
    from ticketbert.pruning import JointPlan, apply
    calibration = make_calibration(tiny_task_data, 8, pad_id=tokenizer.pad_token_id)
    with torch.no_grad():  # layer 0's FFN contributes nothing: its least-squares system is all zeros
        find_encoder(tiny_model).layers()[0].output.dense.weight.zero_()
    removals = {"heads": {}, "ffn": {0: list(range(8)), 1: list(range(8))}}
    with pytest.warns(UserWarning, match=r"left unrepaired .*: layer 0 ffn$"):
        report = apply(tiny_model, JointPlan("heads+ffn", "fisher", 0.1, removals), repair="lstsq",
                       data=calibration)
    assert report.repair.unrepaired == ["layer 0 ffn"] and 1 in report.repair.scales["ffn"]


def test_bad_options_are_one_line_errors(tiny_model, tiny_task_data, tokenizer):
    calibration = make_calibration(tiny_task_data, 4, pad_id=tokenizer.pad_token_id)
    cases = [
        (dict(method="heads+ffn", budget="params"), "budget must be one of flops, weights, got 'params'"),
        (dict(method="heads+ffn", round_to=0), "round_to must be >= 1, got 0"),
        (dict(method="ffn", budget="flops"), "budget applies to method heads\\+ffn, not 'ffn'"),
        (dict(method="heads+ffn", criterion="l1"), "method 'heads\\+ffn' ranks units by fisher, .*got criterion 'l1'"),
        (dict(method="heads+ffn", repair="svd"), "repair must be one of lstsq \\(or None\\), got 'svd'"),
        (dict(method="layers", repair="lstsq"), "repair applies to method heads, ffn or heads\\+ffn, not 'layers'"),
        (dict(method="heads+ffn", scope="layer"), "method 'heads\\+ffn' plans with scope global, not 'layer'"),
    ]
    for kwargs, message in cases:
        method = kwargs.pop("method")
        with pytest.raises(ValueError, match=message) as error:
            prune(copy.deepcopy(tiny_model), method, 0.3, data=calibration, **kwargs)
        assert "\n" not in str(error.value)


# -- distilled recovery --------------------------------------------------------------------------

def test_distill_losses_against_their_definitions():
    from ticketbert.tasks import shipped_task
    torch.manual_seed(0)
    student, teacher, temperature = torch.randn(6, 5), torch.randn(6, 5), 3.0
    p, q = torch.softmax(teacher / temperature, -1), torch.softmax(student / temperature, -1)
    expected = (p * (p.log() - q.log())).sum(-1).mean() * temperature ** 2
    assert float(shipped_task("sst").distill_loss(student, teacher, temperature)) == pytest.approx(float(expected), rel=1e-5)
    s, t = torch.randn(7), torch.randn(7)
    p, q = torch.sigmoid(t / temperature), torch.sigmoid(s / temperature)
    expected = (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).mean() * temperature ** 2
    assert float(shipped_task("para").distill_loss(s, t, temperature)) == pytest.approx(float(expected), rel=1e-5)
    assert float(shipped_task("sts").distill_loss(s, t, temperature)) == pytest.approx(float((s - t).pow(2).mean()))
    for task in ("sst", "para"):  # zero when the student matches the teacher
        same = teacher if task == "sst" else t
        assert float(shipped_task(task).distill_loss(same, same, temperature)) == pytest.approx(0.0, abs=1e-6)


def test_distiller_adds_alpha_times_distillation_to_the_task_loss(tiny_model, tiny_task_data, tokenizer):
    from ticketbert.pruning.distill import Distiller
    from ticketbert.tasks import shipped_task
    teacher = copy.deepcopy(tiny_model)
    prune(tiny_model, "ffn", 0.3, criterion="l1")
    for task in ("sst", "para", "sts"):
        batch = collate(tiny_task_data[task].train, list(range(5)), tokenizer.pad_token_id)
        distiller = Distiller(teacher, alpha=0.7, temperature=2.0)
        with torch.no_grad():
            got = distiller(tiny_model, task, batch)
            out, ref = tiny_model(task, batch), teacher(task, batch)
            want = shipped_task(task).loss(out, batch.labels) + 0.7 * shipped_task(task).distill_loss(out, ref, 2.0)
        assert float(got) == pytest.approx(float(want), rel=1e-6)
        assert distiller.teacher_flops > 0


def test_posthoc_joint_repair_and_distilled_recovery_through_the_config(tiny_run_config, tmp_path):
    from ticketbert.config import load_config
    from ticketbert.run import run_training
    base = ["data.source=synthetic", "data.synthetic_examples=48", "data.train_eval_examples=16", "train.epochs=1",
            "train.lr=1e-3", "train.progress=false", "train.tasks=[sts]", f"output_dir={tmp_path / 'runs'}",
            f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}", "prune.method=heads+ffn", "prune.criterion=fisher",
            "prune.sparsity=0.4", "prune.repair=lstsq", "prune.round_to=8", "prune.calibration_examples=16",
            "prune.recovery_epochs=1", "prune.distill_alpha=0.5", "prune.distill_temperature=2"]
    config = load_config(None, [f"model.encoder={tiny_run_config.model.encoder}", *base])
    metrics = run_training(config).metrics
    assert metrics["flops_reduction"] >= 0.4 and metrics["recovery_teacher_flops"] > 0
    assert "dev/pearson" in metrics and metrics["repair_unrepaired_layers"] == 0
    from ticketbert.config import ConfigError
    for bad, message in [("prune.budget=params", "prune.budget: Input should be 'flops' or 'weights'"),
                         ("prune.repair=svd", "prune.repair: Input should be 'lstsq'"),
                         ("prune.method=layers", "prune: repair applies to method heads, ffn or heads\\+ffn, not 'layers'"),
                         ("prune.round_to=0", "prune.round_to: Input should be greater than or equal to 1"),
                         ("prune.recovery_epochs=0", "distill_alpha distils during recovery")]:
        with pytest.raises(ConfigError, match=message) as error:
            load_config(None, [f"model.encoder={tiny_run_config.model.encoder}", *base, bad])
        assert len(str(error.value).splitlines()) == 1


def test_sweep_grid_accepts_the_new_options_and_rejects_misfits():
    from ticketbert.config import ConfigError
    from ticketbert.sweep.config import load_sweep_config
    config = load_sweep_config(None, ["grid.methods=[heads+ffn,ffn]", "grid.criteria={heads+ffn: fisher, ffn: fisher}",
                                      "prune.repair=lstsq", "prune.recovery_epochs=1", "prune.distill_alpha=1"])
    assert {(t.method, t.criterion) for t in config.trials()} == {("heads+ffn", "fisher"), ("ffn", "fisher")}
    from ticketbert.sweep.checks import option_notes
    mixed = load_sweep_config(None, ["grid.methods=[magnitude,ffn]", "prune.repair=lstsq"])
    assert len(option_notes(mixed)) == 1  # repair for ffn; magnitude's trials go without it (said once)
    with pytest.raises(ConfigError, match="prune.repair"):
        option_notes(load_sweep_config(None, ["grid.methods=[magnitude]", "prune.repair=lstsq"]))
    with pytest.raises(ConfigError, match="grid.methods: heads\\+ffn with base.prune: method 'heads\\+ffn' runs in mode posthoc, not 'early_bird'"):
        load_sweep_config(None, ["grid.methods=[heads+ffn]", "grid.mode=early_bird"])
