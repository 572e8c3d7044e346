"""``python -m scripts.sst2_from_cs224n SST_DIR [OUT_DIR]``: binary SST-2-style sentiment as JSONL
from the CS224N SST-5 files.

Each sentence of ``ids-sst-train.csv`` and ``ids-sst-dev.csv`` (tab-separated, labels 0-4) becomes
one JSON line ``{"sentence": ..., "label": "negative" | "positive"}``: labels 0-1 negative, 3-4
positive, 2 (neutral) dropped. Rows the SST task skips (a missing field, an empty sentence or
label) are skipped here too. Writes ``train.jsonl`` and ``dev.jsonl`` to OUT_DIR (default
``data/sst2``), the files ``configs/sst2.yaml`` declares.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ticketbert.config import DataConfig
from ticketbert.data import read_task
from ticketbert.tasks import shipped_definitions

POLARITY = {0: "negative", 1: "negative", 3: "positive", 4: "positive"}  # 2 (neutral) has none
OUT_DIR = Path(__file__).resolve().parents[1] / "data" / "sst2"


def binary_rows(examples) -> list[dict[str, str]]:
    """The SST-5 examples with a polarity, as SST-2 rows."""
    return [{"sentence": e.texts[0], "label": POLARITY[int(e.label)]} for e in examples if int(e.label) in POLARITY]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.sst2_from_cs224n", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder of ids-sst-train.csv and ids-sst-dev.csv")
    parser.add_argument("out", type=Path, nargs="?", default=OUT_DIR, help=f"where the JSONL goes (default {OUT_DIR})")
    args = parser.parse_args(argv)
    raw = read_task(DataConfig(source="csv", dir=args.source), "sst", shipped_definitions()["sst"])
    args.out.mkdir(parents=True, exist_ok=True)
    for split, examples in (("train", raw.train), ("dev", raw.dev)):
        rows = binary_rows(examples)
        path = args.out / f"{split}.jsonl"
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
        positive = sum(row["label"] == "positive" for row in rows)
        print(f"{path}: {len(rows)} rows ({positive} positive, {len(rows) - positive} negative; "
              f"{len(examples) - len(rows)} neutral dropped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
