"""The built-in pruning methods, described (torch-free; see ``description``)."""

from __future__ import annotations

from ticketbert.pruning.methods.description import MethodDescription, register

LOSS_CRITERIA = ("taylor", "loss_increment", "fisher", "fisher_batch")  # loss increase of removing a unit
UNIT_CRITERIA = ("l1", *LOSS_CRITERIA)

register(MethodDescription(
    name="magnitude", summary="unstructured L1 magnitude over the prunable matrices (Chen et al. 2020)",
    units=(), criteria=("l1",), default_criterion="l1", implementation="ticketbert.pruning.methods.magnitude:METHOD",
    options=frozenset({"include", "pattern"}), modes=("posthoc", "early_bird", "imp"), scopes=("global", "layer", "row")))

for unit, default, what in (("heads", "taylor", "attention heads"), ("ffn", "taylor", "FFN neurons")):
    register(MethodDescription(
        name=unit, summary=f"{what} ranked by a criterion, removed physically (Michel et al. 2019)",
        units=(unit,), criteria=UNIT_CRITERIA, default_criterion=default,
        implementation=f"ticketbert.pruning.methods.structured:{unit.upper()}", options=frozenset({"repair", "steps", "normalize"}),
        modes=("posthoc", "early_bird"), limit="units"))

register(MethodDescription(
    name="layers", summary="whole encoder layers ranked by a criterion, removed physically (one stays)",
    units=("layers",), criteria=UNIT_CRITERIA, default_criterion="loss_increment",
    implementation="ticketbert.pruning.methods.structured:LAYERS", options=frozenset({"steps", "normalize"}),
    modes=("posthoc", "early_bird"), scopes=("global",), limit="all_but_one_unit"))

register(MethodDescription(
    name="heads+ffn", summary="heads and FFN neurons under one FLOPs (or weights) budget (Kwon et al. 2022)",
    units=("heads", "ffn"), criteria=("fisher", "fisher_batch", "taylor", "loss_increment"),
    default_criterion="fisher", implementation="ticketbert.pruning.methods.joint:METHOD",
    options=frozenset({"repair", "budget", "round_to"}), scopes=("global",), limit="all"))

register(MethodDescription(
    name="wanda", summary="unstructured |W| x the input feature's norm on calibration inputs, no weight update, "
                          "layer by layer (Sun et al. 2023); early-bird and IMP: norms from the training forwards",
    units=(), criteria=("activation",), default_criterion="activation",
    implementation="ticketbert.pruning.methods.oneshot:WANDA", options=frozenset({"pattern"}),
    modes=("posthoc", "early_bird", "imp"), scopes=("row", "layer", "global"), default_scope="row",
    reuses_scores=False))

register(MethodDescription(
    name="sparsegpt", summary="unstructured OBS saliency with the kept weights updated to reconstruct each layer's "
                              "output on calibration inputs, layer by layer (Frantar & Alistarh 2023)",
    units=(), criteria=("obs",), default_criterion="obs",
    implementation="ticketbert.pruning.methods.oneshot:SPARSEGPT",
    options=frozenset({"pattern", "block_size", "damping"}), scopes=("row", "layer"), default_scope="layer",
    reuses_scores=False,
    modes_reason="it chooses each mask together with an update of the kept weights that reconstructs the trained "
                 "layer's output; an early-bird draw keeps training the unpruned weights and IMP rewinds them, so "
                 "the update would be thrown away and the mask would no longer be the one OBS chose; use wanda or "
                 "magnitude there"))
