"""``python tests/golden/make_task_golden.py``: golden tensors of the shipped tasks.

For sst, para (bi- and cross-encoder) and sts: four examples of the bundled sample's train file
(the first rows of each label value in turn, so that every case has more than one label), encoded and collated by the bundled MiniLM's tokenizer, the head outputs of a
dropout-free model with seeded heads, its loss, distillation loss (against the outputs in
reversed order), predictions and metrics. ``tests/test_task_golden.py`` compares against them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from ticketbert.config import DataConfig, ModelConfig, RunConfig
from ticketbert.data import collate, encode_task, read_task
from ticketbert.models import load_tokenizer
from ticketbert.tasks.model import build_model

GOLDEN = Path(__file__).resolve().parent / "tasks.safetensors"
EXAMPLES = 4
# case -> (task, settings laid over its shipped declaration)
CASES = {"sst": ("sst", {}), "para_bi": ("para", {"encoding": "bi"}),
         "para_cross": ("para", {"encoding": "cross"}), "sts": ("sts", {})}
DATA = DataConfig(source="sample", max_length=32, train_eval_examples=EXAMPLES)


def varied(labels: list[float], count: int) -> list[int]:
    """Indices of the first rows of each label value in turn (value order of first appearance)."""
    by_value: dict[float, list[int]] = {}
    for index, label in enumerate(labels):
        by_value.setdefault(label, []).append(index)
    queues = list(by_value.values())
    chosen = []
    while len(chosen) < count:
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return sorted(chosen)


def case_tensors(case: str, tokenizer, head_state: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Every golden tensor of one case, keyed ``<case>.<name>``; heads seeded, or loaded from ``head_state``."""
    name, settings = CASES[case]
    definition = RunConfig.model_validate({"tasks": {name: settings}}).task_definition(name)
    raw = read_task(DATA, name, definition)
    data = encode_task(raw, tokenizer, DATA)
    batch = collate(data.train, varied(data.train.labels.tolist(), EXAMPLES), tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = build_model(ModelConfig(dropout=0.0), [raw.task]).eval()
    if head_state is not None:
        model.heads[name].load_state_dict(head_state)
    task = raw.task
    with torch.no_grad():
        outputs = model(name, batch)
        loss = model.task_loss(name, batch)
        distill = task.distill_loss(outputs, outputs.flip(0), 2.0)
    metrics = task.metrics(task.predict(outputs).numpy(), batch.labels.numpy())
    tensors = {
        "input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
        "token_type_ids": batch.token_type_ids, "labels": batch.labels, "outputs": outputs,
        "loss": loss.reshape(1), "distill_loss": distill.reshape(1), "predictions": task.predict(outputs),
        "metrics": torch.tensor([metrics[k] for k in sorted(metrics)], dtype=torch.float64),
    }
    if name != "sts":  # the STS head starts at the identity: nothing seeded to store
        tensors.update({f"head.{k}": v for k, v in model.heads[name].state_dict().items()})
    return {f"{case}.{key}": value.clone().contiguous() for key, value in tensors.items()}


def main() -> None:
    tokenizer = load_tokenizer(ModelConfig().encoder)
    tensors = {}
    for case in CASES:
        tensors.update(case_tensors(case, tokenizer))
    save_file(tensors, str(GOLDEN), metadata={"metric_order": "sorted metric names"})
    print(f"{GOLDEN}: {GOLDEN.stat().st_size:,} bytes, {len(tensors)} tensors")


if __name__ == "__main__":
    main()
