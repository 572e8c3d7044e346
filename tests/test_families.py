"""Every encoder family on tiny random configs, inside its Hugging Face task models: structured
removal equals gating, save/load round trips, ``prune`` and FLOPs, unsupported models."""

from __future__ import annotations

import pytest
import torch
import transformers as hf
from transformers.masking_utils import create_bidirectional_sliding_window_mask

import ticketbert
from ticketbert.models.compute import count_prunable
from ticketbert.models.families import EmptyAttention, find_encoder
from ticketbert.pruning import attached_masks, load_pruned, save_pruned
from ticketbert.pruning.units import UNIT_KINDS

VOCAB, SEQ, LABELS = 99, 11, 3
# initializer_range 0.2: task heads whose outputs are O(1), so that a tolerance of 1e-5 means something
SIZES = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=64, num_labels=LABELS, initializer_range=0.2)
TOKENS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)
BERT_TASKS = ("Model", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering", "ForMaskedLM")

# family -> (config class, config arguments, model-class prefix, task-model suffixes)
FAMILIES = {
    "bert": (hf.BertConfig, dict(SIZES, **TOKENS), "Bert", BERT_TASKS),
    "roberta": (hf.RobertaConfig, dict(SIZES, pad_token_id=1, bos_token_id=0, eos_token_id=2), "Roberta",
                ("Model", "ForSequenceClassification", "ForTokenClassification", "ForMaskedLM")),
    "xlm-roberta": (hf.XLMRobertaConfig, dict(SIZES, pad_token_id=1, bos_token_id=0, eos_token_id=2), "XLMRoberta",
                    ("Model", "ForSequenceClassification", "ForQuestionAnswering", "ForMaskedLM")),
    "camembert": (hf.CamembertConfig, dict(SIZES, pad_token_id=1, bos_token_id=0, eos_token_id=2), "Camembert",
                  ("Model", "ForTokenClassification")),
    "electra": (hf.ElectraConfig, dict(SIZES, embedding_size=16, **TOKENS), "Electra",  # projected embeddings
                ("Model", "ForSequenceClassification", "ForQuestionAnswering", "ForMaskedLM")),
    "distilbert": (hf.DistilBertConfig, dict(vocab_size=VOCAB, dim=32, n_layers=3, n_heads=4, hidden_dim=64,
                                             max_position_embeddings=64, num_labels=LABELS, pad_token_id=0,
                                             initializer_range=0.2),
                   "DistilBert", BERT_TASKS),
    "deberta-v2": (hf.DebertaV2Config, dict(SIZES, **TOKENS, relative_attention=True, share_att_key=False,
                                            pos_att_type="p2c|c2p", position_buckets=-1, max_relative_positions=8),
                   "DebertaV2", BERT_TASKS),
    "deberta-v3": (hf.DebertaV2Config, dict(SIZES, **TOKENS, relative_attention=True, share_att_key=True,
                                            pos_att_type="p2c|c2p", position_buckets=4, max_relative_positions=16,
                                            norm_rel_ebd="layer_norm", position_biased_input=False),
                   "DebertaV2", BERT_TASKS),
    "modernbert": (hf.ModernBertConfig, dict(SIZES, **TOKENS, cls_token_id=1, sep_token_id=2, local_attention=4),
                   "ModernBert", BERT_TASKS),  # layer types: full, sliding, sliding; window +-2 tokens
}
SDPA = ("bert", "roberta", "distilbert", "modernbert")
CASES = [(family, suffix) for family, (*_, suffixes) in FAMILIES.items() for suffix in suffixes]
IDS = [f"{family}-{suffix}" for family, suffix in CASES]

# per kind: layer -> removed units (all heads / all neurons of one layer included)
REMOVALS = {"heads": {0: [0, 1, 2, 3], 2: [1, 3]},
            "ffn": {0: list(range(64)), 1: list(range(0, 64, 3))},
            "layers": {0: [0], 2: [0]}}


def build(family: str, suffix: str = "ForSequenceClassification", seed: int = 0, **config_overrides):
    config_class, arguments, prefix, _ = FAMILIES[family]
    if suffix == "ForQuestionAnswering":
        config_overrides.setdefault("num_labels", 2)  # start and end
    config = config_class(**{**arguments, **config_overrides})
    torch.manual_seed(seed)
    return getattr(hf, f"{prefix}{suffix}")(config).eval()


def inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (3, SEQ), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def outputs(model) -> torch.Tensor:
    """What the task model returns: its logits (start and end for QA), else the hidden states."""
    with torch.no_grad():
        out = model(**inputs())
    if getattr(out, "start_logits", None) is not None:
        return torch.cat([out.start_logits, out.end_logits], -1)
    return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


def gated_outputs(model, kind: str, removed: dict[int, list[int]]) -> torch.Tensor:
    with UNIT_KINDS[kind].gates(find_encoder(model)) as gates:
        with torch.no_grad():
            for layer, units in removed.items():
                gates[layer][units] = 0.0
        return outputs(model)


def remove(model, kind: str, removed: dict[int, list[int]]) -> None:
    UNIT_KINDS[kind].remove(find_encoder(model), removed)


def counts(model, kind: str) -> list[int]:
    return UNIT_KINDS[kind].counts(find_encoder(model))


# -- removal equals gating ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(REMOVALS))
@pytest.mark.parametrize("family,suffix", CASES, ids=IDS)
def test_removal_equals_gating_on_task_outputs(family, suffix, kind):
    model = build(family, suffix)
    removed = REMOVALS[kind]
    before = counts(model, kind)
    gated = gated_outputs(model, kind, removed)
    assert (gated - outputs(model)).abs().max() > 1e-2  # the removal changes something
    remove(model, kind, removed)
    torch.testing.assert_close(outputs(model), gated, atol=1e-5, rtol=1e-5)
    if kind == "layers":
        assert counts(model, kind) == [1] * (len(before) - len(removed))
    else:
        assert counts(model, kind) == [n - len(removed.get(i, [])) for i, n in enumerate(before)]


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("family", SDPA)
def test_removal_equals_gating_under_each_attention_implementation(family, implementation):
    model = build(family, attn_implementation=implementation)
    assert model.config._attn_implementation == implementation
    for kind in ("heads", "layers"):
        gated = gated_outputs(model, kind, {0: [1, 2]} if kind == "heads" else {1: [0]})
        remove(model, kind, {0: [1, 2]} if kind == "heads" else {1: [0]})
        torch.testing.assert_close(outputs(model), gated, atol=1e-5, rtol=1e-5)


def test_emptied_attention_passes_its_output_bias_through():
    """Zero heads: DistilBERT's attention returns out_lin's bias, whatever the input."""
    model = build("distilbert", "Model")
    layer = find_encoder(model).layers()[1]
    remove(model, "heads", {1: [0, 1, 2, 3]})
    assert isinstance(layer.attention, EmptyAttention) and layer.attention.n_heads == 0
    hidden = torch.randn(2, 5, 32)
    out, _ = layer.attention(hidden, attention_mask=None)
    torch.testing.assert_close(out, layer.attention.out_lin.bias.expand(2, 5, 32))


def test_modernbert_layer_removal_keeps_attention_types_and_norms():
    model = build("modernbert", "Model")
    assert model.config.layer_types == ["full_attention", "sliding_attention", "sliding_attention"]
    remove(model, "layers", {0: [0]})  # the first layer, the one whose attention input is not normed
    layers = find_encoder(model).layers()
    assert model.config.layer_types == ["sliding_attention", "sliding_attention"]
    assert [layer.attention_type for layer in layers] == model.config.layer_types
    assert isinstance(layers[0].attn_norm, torch.nn.LayerNorm)


def test_deberta_with_embedding_convolution_keeps_layer_zero():
    model = build("deberta-v2", conv_kernel_size=3)
    gated = gated_outputs(model, "layers", {1: [0]})
    remove(model, "layers", {1: [0]})
    torch.testing.assert_close(outputs(model), gated, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="layer 0 cannot be removed"):
        remove(model, "layers", {0: [0]})


# -- save / load ------------------------------------------------------------------------------------

@pytest.mark.parametrize("family,suffix", CASES, ids=IDS)
def test_save_load_round_trip_of_the_whole_task_model(family, suffix, tmp_path):
    model = build(family, suffix)
    remove(model, "heads", {1: [0, 1, 2, 3], 0: [2]})  # layer 1 loses its attention
    remove(model, "ffn", {2: list(range(10, 40))})
    remove(model, "layers", {0: [0]})  # the emptied layer becomes the first
    ticketbert.prune(model, "magnitude", 0.3)
    expected = outputs(model)
    reloaded = load_pruned(save_pruned(model, tmp_path / "pruned"))
    assert type(reloaded) is type(model)
    torch.testing.assert_close(outputs(reloaded), expected, atol=1e-5, rtol=1e-5)
    masks, reloaded_masks = attached_masks(model), attached_masks(reloaded)
    assert masks.keys() == reloaded_masks.keys() and masks
    assert all(torch.equal(masks[name], reloaded_masks[name]) for name in masks)
    for kind in ("heads", "ffn"):
        assert counts(reloaded, kind) == counts(model, kind)
    assert counts(reloaded, "heads")[0] == 0
    if family == "modernbert":
        assert reloaded.config.layer_types == ["sliding_attention", "sliding_attention"]


# -- prune, criteria, FLOPs -------------------------------------------------------------------------

def labelled_batches() -> list[dict[str, torch.Tensor]]:
    batches = []
    for seed in range(2):
        batch = inputs(seed)
        batch["labels"] = torch.tensor([0, 1, 2])
        batches.append(batch)
    return batches


def reference_span(config, layer_type: str | None) -> float:
    """Keys each query's attention costs, computed from the config and the mask itself."""
    if layer_type == "sliding_attention":
        mask = create_bidirectional_sliding_window_mask(
            config=config, inputs_embeds=torch.zeros(1, 128, 1), attention_mask=torch.ones(1, 128, dtype=torch.long))
        return float((mask == 0).sum() if mask.dtype != torch.bool else mask.sum()) / 128
    if getattr(config, "relative_attention", False):  # c2p and p2c: 2 x positions, scores only
        positions = config.position_buckets if config.position_buckets > 0 else config.max_relative_positions
        return 128 + len(config.pos_att_type) * positions
    return 128.0


def reference_flops(model) -> float:
    encoder = find_encoder(model)
    types = getattr(model.config, "layer_types", None) or [None] * len(encoder.layers())
    attention = sum(4 * reference_span(model.config, layer_type) * heads * 8
                    for layer_type, heads in zip(types, counts(model, "heads")))
    return 2 * count_prunable(model, nonzero=True) + attention


@pytest.mark.parametrize("criterion", ["l1", "taylor"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_prune_by_every_method_keeps_the_task_model_working(family, criterion):
    for method, sparsity in (("heads", 0.2), ("ffn", 0.25), ("layers", 0.3)):
        model = build(family)
        flops, prunable = reference_flops(model), count_prunable(model, nonzero=False)
        data = labelled_batches() if criterion == "taylor" else None
        report = ticketbert.prune(model, method, sparsity, criterion=criterion, data=data)
        assert report.removed and report.prunable_after < prunable
        assert report.achieved_sparsity == pytest.approx(1 - report.prunable_after / prunable)
        assert report.flops_per_token_before == pytest.approx(flops)
        assert report.flops_per_token_after == pytest.approx(reference_flops(model))
        assert report.flops_per_token_after < flops
        logits = outputs(model)
        assert logits.shape == (3, LABELS) and torch.isfinite(logits).all()
        model.train()
        model(**labelled_batches()[0]).loss.backward()  # training goes on with the smaller model


def cross_entropy(model, batch: dict) -> torch.Tensor:
    """A user's loss in the model's precision (DeBERTa's own ``.loss`` is computed in float32)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return torch.nn.functional.cross_entropy(logits, batch["labels"])


def test_taylor_scores_follow_the_task_loss():
    """Taylor's per-head score on DeBERTa (v2 style, relative attention) is the examples-weighted
    sum over batches of |d loss / d gate|, here by central finite differences in float64."""
    model = build("deberta-v2").double()
    batches = labelled_batches()
    scores = ticketbert.score(model, "heads", "taylor", batches, loss_fn=cross_entropy).values
    encoder = find_encoder(model)

    def loss_at(batch: dict, layer: int, head: int, gate: float) -> tuple[float, float]:
        with UNIT_KINDS["heads"].gates(encoder) as gates, torch.no_grad():
            gates[layer][head] = gate
            return float(cross_entropy(model, batch)), float(gates[layer][head])  # the gate as stored

    for layer, head in ((0, 1), (2, 3)):
        expected = 0.0
        for batch in batches:
            (above, up), (below, down) = loss_at(batch, layer, head, 1.001), loss_at(batch, layer, head, 0.999)
            expected += abs((above - below) / (up - down)) / len(batches)
        assert float(scores[layer][head]) == pytest.approx(expected, rel=1e-4)


# -- unsupported models --------------------------------------------------------------------------------

def test_unsupported_model_is_a_one_line_error_naming_the_families():
    model = hf.GPT2Model(hf.GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4))
    for call in (lambda: find_encoder(model), lambda: ticketbert.prune(model, "heads", 0.2, criterion="l1")):
        with pytest.raises(ValueError) as error:
            call()
        message = str(error.value)
        assert "\n" not in message and "'gpt2'" in message
        assert "bert, camembert, deberta-v2, distilbert, electra, modernbert, roberta, xlm-roberta" in message
