"""Recovery with distillation: the pruned model trains on its task loss plus ``alpha`` times a
loss towards the dense model's outputs on the same batch (each task says which: KL at a
temperature on logits for classification, squared error on the score for regression). The
model answers both (``model.loss``, ``model.distill_loss``: e.g. ticketbert's task model)."""

from __future__ import annotations

import torch
from torch import nn

from ticketbert.models.compute import attention_flops_per_token, linear_flops_per_token


class Distiller:
    """``fit(..., batch_loss=Distiller(dense, alpha, temperature))``: task loss + alpha x
    distillation loss; the teacher runs in eval mode without gradients, its forward FLOPs
    counted in ``teacher_flops``."""

    def __init__(self, teacher: nn.Module, alpha: float, temperature: float = 2.0):
        if alpha < 0:
            raise ValueError(f"distill_alpha must be >= 0, got {alpha}")
        if temperature <= 0:
            raise ValueError(f"distill_temperature must be > 0, got {temperature}")
        self.teacher, self.alpha, self.temperature = teacher.eval(), alpha, temperature
        self.teacher_flops = 0.0
        self._teacher_linear = linear_flops_per_token(teacher)

    def __call__(self, model: nn.Module, task_name: str, batch) -> torch.Tensor:
        outputs = model(task_name, batch)
        loss = model.loss(task_name, outputs, batch.labels)
        if self.alpha == 0:
            return loss
        with torch.no_grad():
            teacher = self.teacher(task_name, batch)
        width = batch.input_ids.shape[1]
        self.teacher_flops += batch.tokens * (self._teacher_linear + attention_flops_per_token(self.teacher, width))
        return loss + self.alpha * model.distill_loss(task_name, outputs, teacher, self.temperature)
