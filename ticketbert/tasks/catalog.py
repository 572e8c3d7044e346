"""The registered task kinds, heads, losses and metrics, with the defaults of each kind."""

from __future__ import annotations

from ticketbert.tasks.registry import Registry

CLASSIFICATION, REGRESSION = "classification", "regression"
KINDS = (CLASSIFICATION, REGRESSION)

# heads: pooled embeddings -> raw outputs. ``outputs``: one per class ("classes") or a single value ("one")
HEADS = Registry("head")
HEADS.add("linear", "ticketbert.tasks.heads:LinearHead", kinds=KINDS, outputs="per_kind")
HEADS.add("logit", "ticketbert.tasks.heads:LinearHead", kinds=(CLASSIFICATION,), outputs="one")
HEADS.add("cosine", "ticketbert.tasks.heads:CosineHead", kinds=(REGRESSION,), outputs="one", pairs="bi")

# losses: (outputs, labels) -> mean loss; each with its distillation loss and its predictions
LOSSES = Registry("loss")
LOSSES.add("cross_entropy", "ticketbert.tasks.losses:CROSS_ENTROPY", kinds=(CLASSIFICATION,), outputs="classes")
LOSSES.add("bce", "ticketbert.tasks.losses:BCE", kinds=(CLASSIFICATION,), outputs="one", classes=2)
LOSSES.add("mse", "ticketbert.tasks.losses:MSE", kinds=(REGRESSION,), outputs="one")
LOSSES.add("l1", "ticketbert.tasks.losses:L1", kinds=(REGRESSION,), outputs="one")

# metrics: (predictions, labels, num_labels) -> float over a whole split
METRICS = Registry("metric")
METRICS.add("accuracy", "ticketbert.tasks.metrics:accuracy", kinds=(CLASSIFICATION,))
METRICS.add("f1_macro", "ticketbert.tasks.metrics:macro_f1", kinds=(CLASSIFICATION,))
METRICS.add("f1_binary", "ticketbert.tasks.metrics:binary_f1", kinds=(CLASSIFICATION,), classes=2)
METRICS.add("matthews", "ticketbert.tasks.metrics:matthews", kinds=(CLASSIFICATION,))
METRICS.add("pearson", "ticketbert.tasks.metrics:pearson", kinds=(REGRESSION,))
METRICS.add("spearman", "ticketbert.tasks.metrics:spearman", kinds=(REGRESSION,))

# defaults of each kind: head, loss, metrics (logged name -> metric), primary metric
DEFAULTS = {
    CLASSIFICATION: {"head": "linear", "loss": "cross_entropy", "metrics": {"accuracy": "accuracy", "f1_macro": "f1_macro"},
                     "primary": "accuracy"},
    REGRESSION: {"head": "linear", "loss": "mse", "metrics": {"pearson": "pearson", "spearman": "spearman"},
                 "primary": "pearson"},
}
