"""``python -m ticketbert.data.make_sample SOURCE_DIR OUT_DIR``: the bundled real-data sample.

Draws a seeded subset of the records of each CS224N file and writes them byte for byte (same
line endings, same quoting), in their original order, under the original header. Every
malformed record of a file (wrong field count, empty label or sentence) is kept as well, so
the sample carries the real files' defects and the loader's handling of them is exercised.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

# file -> (text columns, label column); the six files of the three tasks
FILES: dict[str, tuple[tuple[str, ...], str]] = {
    "ids-sst-train.csv": (("sentence",), "sentiment"),
    "ids-sst-dev.csv": (("sentence",), "sentiment"),
    "quora-train.csv": (("sentence1", "sentence2"), "is_duplicate"),
    "quora-dev.csv": (("sentence1", "sentence2"), "is_duplicate"),
    "sts-train.csv": (("sentence1", "sentence2"), "similarity"),
    "sts-dev.csv": (("sentence1", "sentence2"), "similarity"),
}
SEED = 224
TRAIN_RECORDS = 1200
DEV_RECORDS = 400


def records(lines: list[str]) -> list[tuple[list[str], list[str]]]:
    """(parsed fields, raw lines) of every record after the header; a quote-mangled record
    spans several physical lines."""
    reader = csv.reader(iter(lines), delimiter="\t")
    next(reader)
    out, start = [], reader.line_num
    for fields in reader:
        out.append((fields, lines[start: reader.line_num]))
        start = reader.line_num
    return out


def is_malformed(fields: list[str], header: list[str], texts: tuple[str, ...], label: str) -> bool:
    """The same rows the loader skips: wrong field count, empty label or empty sentence."""
    if len(fields) != len(header):
        return True
    return not fields[header.index(label)].strip() or not all(fields[header.index(t)].strip() for t in texts)


def sample_file(source: Path, size: int, seed: int) -> str:
    """The text of a sample of ``source``: ``size`` seeded well-formed records plus every malformed one."""
    texts, label = FILES[source.name]
    with source.open(encoding="utf-8", newline="") as handle:  # lines as the loader's csv reader sees them
        lines = handle.readlines()
    header = next(csv.reader([lines[0]], delimiter="\t"))
    parsed = records(lines)
    bad = [i for i, (fields, _) in enumerate(parsed) if is_malformed(fields, header, texts, label)]
    good = [i for i in range(len(parsed)) if i not in set(bad)]
    chosen = sorted(random.Random(f"{seed}/{source.name}").sample(good, min(size, len(good))) + bad)
    return lines[0] + "".join("".join(parsed[i][1]) for i in chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ticketbert.data.make_sample", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="directory of the six CS224N files")
    parser.add_argument("out", type=Path, help="where the sample goes (ticketbert/data/sample)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--train", type=int, default=TRAIN_RECORDS, help="well-formed records per train file")
    parser.add_argument("--dev", type=int, default=DEV_RECORDS, help="well-formed records per dev file")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        size = args.train if "-train" in name else args.dev
        text = sample_file(args.source / name, size, args.seed)
        with (args.out / name).open("w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        print(f"{name}: {len(text.encode()):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
