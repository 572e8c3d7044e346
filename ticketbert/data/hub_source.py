"""Loading the tasks from the Hugging Face hub with ``datasets`` (needs network)."""

from __future__ import annotations

import warnings

from ticketbert.data.examples import DataError, Example
from ticketbert.extras import require
from ticketbert.tasks import Task


def read_hub_split(task: Task, split: str) -> list[Example]:
    """Examples of ``task``'s ``split`` from its hub dataset (SST-5, GLUE QQP, GLUE STS-B)."""
    require("data", "reading tasks from the Hugging Face hub")
    from datasets import load_dataset

    source = task.hub
    name = f"{source.path}" + (f"/{source.name}" if source.name else "")
    try:
        rows = load_dataset(source.path, source.name, split=source.splits[split])
    except Exception as exc:  # network or hub errors: say which dataset
        raise DataError(f"hub dataset {name} ({split}): could not be loaded: {exc}") from exc
    examples, skipped = [], 0
    for row in rows:
        texts = tuple(str(row[c] or "").strip() for c in source.text_columns)
        raw = row[source.label_column]
        if raw is None or not all(texts):
            skipped += 1
            continue
        try:
            examples.append(Example(texts, task.parse_label(str(raw))))
        except ValueError:
            skipped += 1
    if skipped:
        warnings.warn(f"hub dataset {name} ({split}): skipped {skipped} row(s) without text or a valid label",
                      stacklevel=2)
    return examples
