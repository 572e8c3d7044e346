"""One-shot pruning: Wanda and SparseGPT against direct computations, N:M patterns, the
layer-wise loop on every family, error ordering, recovery and bad options."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from transformers import (BertConfig, BertModel, DebertaV2Config, DebertaV2Model, DistilBertConfig, DistilBertModel,
                          ModernBertConfig, ModernBertModel)

from ticketbert.models.compute import effective_weight, prunable_linears
from ticketbert.pruning import attach_masks, attached_masks, make_calibration
from ticketbert.pruning.distill import Distiller
from ticketbert.pruning.oneshot import oneshot_prune, parse_pattern, sparsegpt_prune
from ticketbert.training.loop import fit

FAMILIES = {
    "bert": lambda: BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                         intermediate_size=64), add_pooling_layer=False),
    "distilbert": lambda: DistilBertModel(DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=4,
                                                           hidden_dim=64)),
    "modernbert": lambda: ModernBertModel(ModernBertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
        global_attn_every_n_layers=2, local_attention=8, pad_token_id=0, bos_token_id=1, eos_token_id=2,
        cls_token_id=1, sep_token_id=2)),
    "deberta-v2": lambda: DebertaV2Model(DebertaV2Config(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        relative_attention=True, pos_att_type=["p2c", "c2p"])),
}


def encoder(family: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return FAMILIES[family]().eval()


def batches(count: int = 3, rows: int = 4, tokens: int = 12, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Dict batches with padding (rows 0 and 2 end early)."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        mask = torch.ones(rows, tokens, dtype=torch.long)
        mask[0, tokens // 2:] = 0
        mask[2, 3:] = 0
        out.append({"input_ids": torch.randint(5, 100, (rows, tokens), generator=generator), "attention_mask": mask})
    return out


def real_rows(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Real tokens of a per-token input; every row of one that is not (DeBERTa's relative positions)."""
    return x[mask.bool()] if x.shape[:-1] == mask.shape else x.reshape(-1, x.shape[-1])


def layer_inputs(model: nn.Module, names: list[str], data: list[dict]) -> dict[str, torch.Tensor]:
    """The real-token inputs ([tokens, features]) of the named Linears over ``data``."""
    linears = prunable_linears(model)
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    current = {}
    handles = [linears[name].register_forward_pre_hook(
        lambda _, args, name=name: seen[name].append(real_rows(args[0], current["mask"]))) for name in names]
    with torch.no_grad():
        for batch in data:
            current["mask"] = batch["attention_mask"]
            model(**batch)
    for handle in handles:
        handle.remove()
    return {name: torch.cat(xs) for name, xs in seen.items()}


def rowwise_keep(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    order = scores.argsort(dim=1)
    keep = torch.ones_like(scores, dtype=torch.bool)
    pruned = round(sparsity * scores.shape[1])
    for row in range(scores.shape[0]):
        keep[row, order[row, :pruned]] = False
    return keep


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_wanda_masks_equal_direct_computation_layer_by_layer(family):
    """Each layer's masks: |W| x ||X_j|| (real tokens only) per row, X read from the model with
    the earlier layers' masks attached: the loop calibrates each layer on the pruned model."""
    dense, data = encoder(family), batches()
    pruned = copy.deepcopy(dense)
    result = oneshot_prune(pruned, "wanda", 0.5, data)
    assert result.loop.sequential and result.options.scope == "row"
    masks = result.masks
    names = list(prunable_linears(dense))
    layer_of = {name: int(next(part for part in name.split(".") if part.isdigit())) for name in names}
    for layer in sorted(set(layer_of[n] for n in names)):
        reference = copy.deepcopy(dense)
        attach_masks(reference, {f"{n}.weight": masks[f"{n}.weight"] for n in names if layer_of[n] < layer})
        here = [n for n in names if layer_of[n] == layer]
        inputs = layer_inputs(reference, here, data)
        for name in here:
            norms = inputs[name].double().pow(2).sum(0).sqrt()
            scores = effective_weight(prunable_linears(dense)[name]).detach().double().abs() * norms[None, :]
            assert torch.equal(masks[f"{name}.weight"], rowwise_keep(scores, 0.5)), name


def test_sparsegpt_in_the_loop_equals_the_solver_on_each_layers_real_token_hessian():
    """Each layer's masks and updated weights: ``sparsegpt_prune`` on H = 2 X X^T / n over real
    tokens, X read from the model whose earlier layers hold the loop's pruned, updated weights."""
    dense, data = encoder("bert"), batches()
    pruned = copy.deepcopy(dense)
    result = oneshot_prune(pruned, "sparsegpt", 0.5, data)
    names = list(prunable_linears(dense))
    layer_of = {name: int(next(part for part in name.split(".") if part.isdigit())) for name in names}
    for layer in sorted(set(layer_of.values())):
        reference = copy.deepcopy(dense)
        with torch.no_grad():
            for n in names:
                if layer_of[n] < layer:
                    prunable_linears(reference)[n].weight.copy_(effective_weight(prunable_linears(pruned)[n]))
        here = [n for n in names if layer_of[n] == layer]
        inputs = layer_inputs(reference, here, data)
        for name in here:
            x = inputs[name].double()
            hessian = (2 * x.T @ x / x.shape[0]).float()
            weight, keep = sparsegpt_prune(prunable_linears(dense)[name].weight.detach(), hessian, 0.5)
            assert torch.equal(result.masks[f"{name}.weight"], keep), name
            torch.testing.assert_close(effective_weight(prunable_linears(pruned)[name]).detach(), weight * keep,
                                       rtol=1e-3, atol=1e-5, msg=name)


def test_wanda_ignores_padding_tokens():
    data = batches()
    changed = copy.deepcopy(data)
    for batch in changed:
        batch["input_ids"][batch["attention_mask"] == 0] = 7
    first, second = encoder("bert"), encoder("bert")
    masks_a = oneshot_prune(first, "wanda", 0.5, data).masks
    masks_b = oneshot_prune(second, "wanda", 0.5, changed).masks
    assert all(torch.equal(masks_a[k], masks_b[k]) for k in masks_a)


def obs_reference(weight, hessian, sparsity, *, block_size, damping, scope="layer", pattern=None):
    """SparseGPT column by column, from first principles: with F the columns not yet fixed,
    the OBS step for column j uses inv(H_FF) directly; masks are chosen by w^2 / inv(H_FF)_00
    from the current weights at each block start (or each M-group start under a pattern)."""
    w = weight.clone().double()
    h = hessian.clone().double()
    h += damping * h.diagonal().mean() * torch.eye(h.shape[0], dtype=torch.float64)
    rows, cols = w.shape
    keep = torch.ones(rows, cols, dtype=torch.bool)
    curvature = torch.stack([torch.linalg.inv(h[j:, j:])[0, 0] for j in range(cols)])
    nm = parse_pattern(pattern)
    for j in range(cols):
        if nm is None and j % block_size == 0:
            block = slice(j, min(j + block_size, cols))
            scores = w[:, block] ** 2 / curvature[block][None, :]
            if scope == "row":
                keep[:, block] = rowwise_keep(scores, sparsity)
            else:
                flat = torch.ones(scores.numel(), dtype=torch.bool)
                flat[scores.reshape(-1).argsort()[:round(sparsity * scores.numel())]] = False
                keep[:, block] = flat.view_as(scores)
        if nm is not None and j % nm.m == 0:
            group = slice(j, j + nm.m)
            keep[:, group] = rowwise_keep(w[:, group] ** 2 / curvature[group][None, :], 1 - nm.n / nm.m)
        inverse = torch.linalg.inv(h[j:, j:])
        q = w[:, j] * keep[:, j]
        w[:, j:] -= ((w[:, j] - q) / inverse[0, 0])[:, None] * inverse[0][None, :]
        w[:, j] = q
    return w, keep


def correlated_inputs(tokens: int, features: int, seed: int, spread: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(features, features, generator=generator, dtype=torch.float64) / features ** 0.5
    scales = torch.logspace(0, torch.log10(torch.tensor(spread)).item(), features, dtype=torch.float64)
    return (torch.randn(tokens, features, generator=generator, dtype=torch.float64) @ (torch.eye(features) + mixing)) * scales


@pytest.mark.parametrize("block_size,scope,pattern", [
    *[(b, scope, None) for b in (1, 3, 8, 16, 64) for scope in ("layer", "row")],
    *[(b, "layer", "2:4") for b in (4, 8, 16, 64)],
])
def test_sparsegpt_equals_unblocked_obs_reference(block_size, scope, pattern):
    generator = torch.Generator().manual_seed(block_size)
    weight = torch.randn(6, 16, generator=generator, dtype=torch.float64)
    x = correlated_inputs(200, 16, seed=block_size)
    hessian = 2 * x.T @ x / x.shape[0]
    expected_w, expected_keep = obs_reference(weight, hessian, 0.5, block_size=block_size, damping=0.01, scope=scope,
                                              pattern=pattern)
    got_w, got_keep = sparsegpt_prune(weight, hessian, 0.5, scope=scope, pattern=parse_pattern(pattern),
                                      block_size=block_size, damping=0.01)
    assert torch.equal(got_keep, expected_keep)
    torch.testing.assert_close(got_w, expected_w, rtol=1e-9, atol=1e-10)
    assert torch.all(got_w[~got_keep] == 0)


def reconstruction_error(weight, pruned, x):
    return float(((x @ (pruned - weight).T) ** 2).sum())


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("pattern", [None, "2:4"])
def test_sparsegpt_with_wanda_mask_and_full_block_is_no_worse_than_wanda(seed, pattern):
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(8, 32, generator=generator, dtype=torch.float64)
    x = correlated_inputs(300, 32, seed=seed, spread=10.0)
    scores = weight.abs() * x.pow(2).sum(0).sqrt()[None, :]
    nm = parse_pattern(pattern)
    if nm is None:
        keep = rowwise_keep(scores, 0.5)
    else:
        keep = torch.cat([rowwise_keep(scores[:, g: g + 4], 0.5) for g in range(0, 32, 4)], dim=1)
    updated, used = sparsegpt_prune(weight, 2 * x.T @ x / len(x), 0.5, block_size=32, damping=1e-6, keep=keep)
    assert torch.equal(used, keep)
    assert reconstruction_error(weight, updated, x) <= reconstruction_error(weight, weight * keep, x)


@pytest.mark.parametrize("method", ["magnitude", "wanda", "sparsegpt"])
@pytest.mark.parametrize("pattern", ["2:4", "1:4", "4:8"])
def test_nm_masks_hold_in_every_group(method, pattern):
    model = encoder("bert")
    result = oneshot_prune(model, method, data=batches(), pattern=pattern)
    nm = parse_pattern(pattern)
    assert result.achieved_sparsity == pytest.approx(nm.sparsity)
    for name, linear in prunable_linears(model).items():
        weight = effective_weight(linear).detach()
        kept = result.masks[f"{name}.weight"].reshape(weight.shape[0], -1, nm.m).sum(-1)
        assert torch.all(kept == nm.n), name
        assert torch.all((weight != 0).reshape(weight.shape[0], -1, nm.m).sum(-1) <= nm.n), name


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_nm_masks_hold_on_every_family_through_the_layer_wise_loop(family, method):
    model = encoder(family)
    result = oneshot_prune(model, method, data=batches(), pattern="2:4")
    assert result.loop.sequential and result.achieved_sparsity == pytest.approx(0.5)
    for name, linear in prunable_linears(model).items():
        weight = effective_weight(linear).detach()
        assert torch.all((weight != 0).reshape(weight.shape[0], -1, 4).sum(-1) <= 2), name


def test_error_ordering_sparsegpt_wanda_magnitude_on_spread_features():
    """A tiny two-layer model whose input features' norms spread 30x: on the calibration data,
    each layer's reconstruction error is sparsegpt < wanda < magnitude at 50% and 2:4."""
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 16)).eval()
    x = correlated_inputs(512, 32, seed=0, spread=30.0).float()
    data = list(x.split(64))
    inputs = {"0": x, "2": torch.relu(dense[0](x)).detach()}
    for pattern, sparsity in ((None, 0.5), ("2:4", None)):
        errors = {}
        for method in ("sparsegpt", "wanda", "magnitude"):
            model = copy.deepcopy(dense)
            oneshot_prune(model, method, sparsity, data, forward_fn=lambda m, b: m(b), pattern=pattern,
                          scope=None if method == "sparsegpt" else "row")
            errors[method] = [reconstruction_error(dense[int(k)].weight.detach(), effective_weight(model[int(k)]).detach(),
                                                   inputs[k]) for k in ("0", "2")]
        for layer in range(2):
            assert errors["sparsegpt"][layer] < errors["wanda"][layer] < errors["magnitude"][layer], (pattern, errors)


def test_global_scope_plans_one_threshold_over_all_matrices():
    model = encoder("bert")
    result = oneshot_prune(model, "wanda", 0.6, batches(), scope="global")
    assert not result.loop.sequential
    assert result.achieved_sparsity == pytest.approx(0.6, abs=1e-3)
    per_matrix = [1 - float(m.float().mean()) for m in result.masks.values()]
    assert max(per_matrix) - min(per_matrix) > 0.01  # matrices differ: one threshold, not one share each


@pytest.mark.parametrize("distill_alpha", [0.0, 0.5])
def test_ticketbert_task_batches_and_recovery_keep_pruned_weights_zero(tiny_model, tiny_task_data, tiny_run_config,
                                                                       tokenizer, distill_alpha):
    """Recovery (plain, or distilled from the dense model) trains the kept weights from
    SparseGPT's updated values and leaves the pruned ones at exactly zero."""
    calibration = make_calibration(tiny_task_data, 16, pad_id=tokenizer.pad_token_id)
    dense = copy.deepcopy(tiny_model)
    result = oneshot_prune(tiny_model, "sparsegpt", data=calibration, pattern="2:4")
    assert result.loop.sequential and result.loop.tokens == calibration.tokens
    start = {name: effective_weight(m).detach().clone() for name, m in prunable_linears(tiny_model).items()}
    dense_weights = {name: m.weight.detach() for name, m in prunable_linears(dense).items()}
    assert any(not torch.equal(start[n][start[n] != 0], dense_weights[n][start[n] != 0]) for n in start)  # OBS update
    distiller = Distiller(dense, distill_alpha) if distill_alpha else None
    fit(tiny_model, tiny_task_data, tiny_run_config.train, pad_id=tokenizer.pad_token_id, epochs=1,
        batch_loss=distiller)
    assert distiller is None or distiller.teacher_flops > 0
    for name, linear in prunable_linears(tiny_model).items():
        weight, keep = effective_weight(linear).detach(), attached_masks(tiny_model)[f"{name}.weight"]
        assert torch.all(weight[~keep] == 0), name
        assert not torch.equal(weight[keep], start[name][keep]), name  # kept weights trained


def test_an_encoder_that_changes_states_between_layers_is_refused():
    torch.manual_seed(0)
    model = DebertaV2Model(DebertaV2Config(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                           intermediate_size=64, conv_kernel_size=3)).eval()
    with pytest.raises(ValueError, match="changes hidden states between its layers.*scope='global'"):
        oneshot_prune(model, "wanda", 0.5, batches())
    assert oneshot_prune(model, "wanda", 0.5, batches(), scope="global").achieved_sparsity == pytest.approx(0.5)


def _linear_model():
    return nn.Sequential(nn.Linear(10, 8))


@pytest.mark.parametrize("build,method,kwargs,message", [
    (encoder, "wanda", dict(pattern="4:4"), "0 < N < M"),
    (encoder, "wanda", dict(pattern="5:4"), "0 < N < M"),
    (encoder, "wanda", dict(pattern="2-4"), "'N:M'"),
    (encoder, "sparsegpt", dict(sparsity=0.6, pattern="2:4"), "contradicts pattern 2:4"),
    (_linear_model, "magnitude", dict(pattern="2:4"), "has 10 input features"),
    (encoder, "wanda", dict(sparsity=0.5, data=None), "pass data="),
    (encoder, "sparsegpt", dict(sparsity=0.5, data=None), "pass data="),
    (encoder, "sparsegpt", dict(sparsity=0.5, scope="global"), "scope must be one of row, layer"),
    (encoder, "sparsegpt", dict(pattern="2:4", block_size=6), "block_size"),
    (encoder, "sparsegpt", dict(sparsity=0.5, damping=0.0), "damping"),
    (encoder, "wanda", dict(), "sparsity is required"),
    (encoder, "obs", dict(sparsity=0.5), "unknown one-shot method"),
])
def test_bad_options_are_one_line_errors_before_any_pruning(build, method, kwargs, message):
    model = build("bert") if build is encoder else build()
    kwargs = {"data": batches(), **kwargs}
    with pytest.raises(ValueError, match=message) as raised:
        oneshot_prune(model, method, **kwargs)
    assert "\n" not in str(raised.value)
    assert not attached_masks(model)
