"""Reader of the CS224N tab-separated files (header row, unnamed index column)."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

from ticketbert.data.examples import DataError, Example
from ticketbert.tasks import Task


def read_csv_split(task: Task, directory: Path, split: str) -> list[Example]:
    """Examples of ``task``'s ``split`` file in ``directory``.

    Malformed rows (a missing field, an empty sentence or an empty label) are skipped and
    counted in one warning naming the file and lines. A missing file or column, an empty file,
    or a label outside the task's range raises DataError naming the file and line.
    """
    path = Path(directory) / task.files[split]
    if not path.is_file():
        raise DataError(f"{path}: file not found (task {task.name}, split {split})")
    examples: list[Example] = []
    skipped: list[str] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if not header:
            raise DataError(f"{path}: empty file, expected a header row")
        wanted = (*task.text_columns, task.label_column)
        missing = [name for name in wanted if name not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; header is {header}")
        text_at = [header.index(name) for name in task.text_columns]
        label_at = header.index(task.label_column)
        for row in reader:
            line = reader.line_num
            if len(row) != len(header):
                skipped.append(f"line {line} ({len(row)} fields, expected {len(header)})")
                continue
            texts = tuple(row[i].strip() for i in text_at)
            raw_label = row[label_at].strip()
            if not raw_label:
                skipped.append(f"line {line} (empty {task.label_column})")
                continue
            if not all(texts):
                skipped.append(f"line {line} (empty sentence)")
                continue
            try:
                label = task.parse_label(raw_label)
            except ValueError as exc:
                raise DataError(f"{path}: line {line}: {exc}") from None
            examples.append(Example(texts, label))
    if skipped:
        warnings.warn(f"{path}: skipped {len(skipped)} malformed row(s): {'; '.join(skipped)}", stacklevel=2)
    if not examples:
        raise DataError(f"{path}: no usable rows")
    return examples
