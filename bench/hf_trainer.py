"""``python -m bench.hf_trainer``: the bundled MiniLM as ``BertForSequenceClassification``, trained
on SST-5 with the Hugging Face ``Trainer``: dense, and with ``EarlyBirdCallback`` variants, one
after another in one process. Dev accuracy, training wall time, the ticket's step and the final
model's size; the committed figures are ``bench/results/hf_trainer.json``.

    python -m bench.hf_trainer --variants dense heads:0.2:taylor ffn:0.3:l1
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import numpy as np
import torch
from transformers import (AutoTokenizer, BertForSequenceClassification, DataCollatorWithPadding, Trainer,
                          TrainingArguments)

import ticketbert
from bench.common import add_output_arguments, bench_config, record_data, save
from ticketbert.integrations.transformers import add_early_bird
from ticketbert.models import resolve_encoder
from ticketbert.models.compute import count_prunable, flops_per_token
from ticketbert.run import read_data
from ticketbert.training.device import use_bf16

MAX_LENGTH = 96  # as configs/single/sst.yaml


def encoded(tokenizer, examples) -> list[dict]:
    return [dict(tokenizer(e.texts[0], truncation=True, max_length=MAX_LENGTH), labels=int(e.label)) for e in examples]


def run(variant: str, train: list[dict], dev: list[dict], tokenizer, epochs: int, seed: int) -> dict:
    """One Trainer run; ``variant`` is ``dense`` or ``method:sparsity:criterion``."""
    torch.manual_seed(seed)
    model = BertForSequenceClassification.from_pretrained(resolve_encoder("all-MiniLM-L6-v2"), num_labels=5)
    collator = DataCollatorWithPadding(tokenizer)
    bf16 = use_bf16(torch.device("cpu"), "auto")
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(out, num_train_epochs=epochs, learning_rate=5e-5, per_device_train_batch_size=32,
                                 per_device_eval_batch_size=128, warmup_steps=0.1, weight_decay=0.01, seed=seed,
                                 train_sampling_strategy="group_by_length", bf16=bf16, use_cpu=True, save_strategy="no", report_to="none",
                                 logging_steps=50, disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator)
        callback = None
        if variant != "dense":
            method, sparsity, criterion = variant.split(":")
            chosen = random.Random(seed).sample(range(len(train)), 256)
            calibration = [collator([train[i] for i in chosen[k: k + 32]]) for k in range(0, 256, 32)]
            pruner = ticketbert.EarlyBirdPruner(method, float(sparsity), criterion=criterion, interval=20, window=3,
                                                epsilon=0.1, max_steps=300, draws="calibration", data=calibration,
                                                model=model)  # the settings of the committed results
            callback = add_early_bird(trainer, pruner)
        began = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - began
        predictions = trainer.predict(dev)
    accuracy = float(np.mean(predictions.predictions.argmax(-1) == predictions.label_ids))
    result = {"variant": variant, "dev_accuracy": accuracy, "train_seconds": train_seconds, "steps": trainer.state.global_step,
              "prunable_params": count_prunable(model, nonzero=False), "flops_per_token": flops_per_token(model),
              "bf16": bf16}
    if callback is not None:
        result.update(found_step=callback.pruner.found_at, converged=callback.pruner.converged,
                      scoring_flops=callback.pruner.scoring_flops,
                      achieved_sparsity=callback.report.achieved_sparsity if callback.report else 0.0)
    print(result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hf_trainer", description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["dense", "heads:0.2:taylor", "ffn:0.3:l1"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    add_output_arguments(parser)
    args = parser.parse_args()
    config = bench_config(["sst"], args.data_dir)
    record = record_data(config)
    raw = read_data(config)[0]
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder("all-MiniLM-L6-v2"))
    train, dev = encoded(tokenizer, raw.train), encoded(tokenizer, raw.dev)
    results = [run(v, train, dev, tokenizer, args.epochs, args.seed) for v in args.variants]
    save("hf_trainer", args.out, record, {"task": raw.task.name, "train_examples": len(train),
                                          "dev_examples": len(dev), "epochs": args.epochs, "results": results})


if __name__ == "__main__":
    main()
