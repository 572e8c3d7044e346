"""The shipped tasks against golden tensors of the encoded batches and head outputs recorded
before tasks became declarations (tests/golden/make_task_golden.py wrote them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
_spec = importlib.util.spec_from_file_location("make_task_golden", GOLDEN_DIR / "make_task_golden.py")
make_task_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_task_golden)
GOLDEN = load_file(str(GOLDEN_DIR / "tasks.safetensors"))
EXACT = ("input_ids", "attention_mask", "token_type_ids", "labels", "predictions")


@pytest.mark.parametrize("case", list(make_task_golden.CASES))
def test_shipped_task_matches_golden(case, tokenizer):
    prefix = f"{case}."
    golden = {k[len(prefix):]: v for k, v in GOLDEN.items() if k.startswith(prefix)}
    head = {k[len("head."):]: v for k, v in golden.items() if k.startswith("head.")}
    got = {k[len(prefix):]: v for k, v in make_task_golden.case_tensors(case, tokenizer, head or None).items()}
    assert set(got) == set(golden)
    for name, expected in golden.items():
        if name in EXACT or name.startswith("head."):
            assert torch.equal(got[name], expected), f"{case}: {name} differs"
        else:
            torch.testing.assert_close(got[name], expected, rtol=1e-4, atol=1e-5, msg=f"{case}: {name} differs")
