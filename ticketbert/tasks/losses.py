"""Task losses, each with the distillation loss and the predictions that go with it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ticketbert.tasks.heads import upcast


@dataclass(frozen=True)
class Loss:
    """``loss(outputs, labels)``, ``distill(student, teacher, temperature)``, ``predict(outputs)``."""

    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    distill: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
    predict: Callable[[torch.Tensor], torch.Tensor]


def softmax_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the class distributions at ``temperature``, times T^2 (Hinton et al.)."""
    log_student = F.log_softmax(upcast(student) / temperature, dim=-1)
    log_teacher = F.log_softmax(upcast(teacher) / temperature, dim=-1)
    return F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean") * temperature ** 2


def bernoulli_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the Bernoulli distributions of the logits at ``temperature``, times T^2."""
    s, t = upcast(student) / temperature, upcast(teacher) / temperature
    p = torch.sigmoid(t)
    kl = p * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - p) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return kl.mean() * temperature ** 2


def score_mse(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean squared difference of the predicted scores (a regression: no temperature)."""
    return F.mse_loss(upcast(student), upcast(teacher).detach())


def _against_float(loss: Callable) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return lambda outputs, labels: loss(upcast(outputs), labels.to(upcast(outputs).dtype))


CROSS_ENTROPY = Loss(lambda outputs, labels: F.cross_entropy(upcast(outputs), labels.long()), softmax_kl,
                     lambda outputs: outputs.argmax(dim=-1))
BCE = Loss(_against_float(F.binary_cross_entropy_with_logits), bernoulli_kl, lambda outputs: (outputs > 0).long())
MSE = Loss(_against_float(F.mse_loss), score_mse, lambda outputs: outputs)
L1 = Loss(_against_float(F.l1_loss), score_mse, lambda outputs: outputs)
