"""A declared task's rows: from its files, a ``datasets`` dataset or the synthetic generator,
checked cell by cell (every error names the task, file, row and column). Torch-free."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ticketbert.data.examples import DataError, Example
from ticketbert.data.location import DataLocation
from ticketbert.data.readers import Row, iter_dataset, read_table
from ticketbert.extras import require
from ticketbert.tasks.definition import TaskDefinition


@dataclass(frozen=True)
class Cells:
    """A usable row before its label is parsed: texts, the raw label and where it was read."""

    texts: tuple[str, ...]
    label: object
    where: str


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _check_columns(task: str, source: str, found: list[str], wanted: Iterable[str]) -> None:
    missing = [column for column in wanted if column not in found]
    if missing:
        raise DataError(f"{source}: task {task}: missing column(s) {missing}; columns found: {found}")


def _usable(task: str, definition: TaskDefinition, source: str, rows: Iterable[Row], columns: dict[str, str]) -> list[Cells]:
    """Rows with every text and the label present; the others skipped with one warning, or an
    error (``on_malformed: error``). ``columns``: the task's column -> the row's key."""
    cells, skipped = [], []
    for row in rows:
        problem = row.problem
        if problem is None:
            label = row.values.get(columns[definition.label])
            texts = tuple("" if _is_empty(v) else str(v).strip()
                          for v in (row.values.get(columns[c]) for c in definition.text))
            if _is_empty(label):
                problem = f"empty {definition.label}"
            elif not all(texts):
                empty = next(c for c, t in zip(definition.text, texts) if not t)
                problem = f"empty {empty}"
        if problem is not None:
            if definition.on_malformed == "error":
                raise DataError(f"{source}: {row.where}: {problem} (task {task}, on_malformed: error)")
            skipped.append(f"{row.where} ({problem})")
            continue
        cells.append(Cells(texts, label, f"{source}: {row.where}"))
    if skipped:
        shown = "; ".join(skipped[:20]) + (f"; ... {len(skipped) - 20} more" if len(skipped) > 20 else "")
        warnings.warn(f"{source}: skipped {len(skipped)} malformed row(s): {shown}", stacklevel=3)
    return cells


def split_file(definition: TaskDefinition, split: str, location: DataLocation) -> Path | None:
    """The file of ``split``: absolute as declared, relative under the data directory; None if not declared."""
    path = (definition.files or {}).get(split)
    if path is None or path.is_absolute():
        return path
    if location.directory is None:
        raise DataError(f"{path}: a relative task file needs a data directory (data.dir)")
    return location.directory / path


def uses_synthetic(definition: TaskDefinition, location: DataLocation) -> bool:
    """data.source=synthetic serves the tasks that have a generator; the others read their rows."""
    return location.source == "synthetic" and definition.synthetic is not None


def uses_dataset(definition: TaskDefinition, location: DataLocation) -> bool:
    """Whether rows come from ``dataset``: when no files are declared, or for data.source=hub
    when the files are the shipped ones (relative names under data.dir)."""
    if definition.dataset is None:
        return False
    if not definition.files:
        return True
    return location.source == "hub" and not definition.files["train"].is_absolute()


def own_rows(definition: TaskDefinition, location: DataLocation) -> str | None:
    """Where a task reads rows of its own (its train file or dataset), or None when it reads
    the data location's (the shipped tasks' relative files, the hub, the generator)."""
    if uses_synthetic(definition, location):
        return None
    if uses_dataset(definition, location):
        return None if definition.files else f"dataset {definition.dataset.path}"
    train = definition.files["train"]
    return str(train.parent) if train.is_absolute() else None


def read_file_cells(task: str, definition: TaskDefinition, split: str, location: DataLocation) -> list[Cells] | None:
    """Usable rows of ``split``'s file (None when the task declares no such file)."""
    path = split_file(definition, split, location)
    if path is None:
        return None
    table = read_table(path, definition.format)
    _check_columns(task, str(path), table.columns, (*definition.text, definition.label))
    cells = _usable(task, definition, str(path), table.rows, {c: c for c in table.columns})
    if not cells:
        raise DataError(f"{path}: no usable rows (task {task})")
    return cells


def read_dataset_cells(task: str, definition: TaskDefinition, split: str) -> list[Cells] | None:
    """Usable rows of ``split`` of the task's ``datasets`` dataset (a saved folder or a hub id)."""
    source = definition.dataset
    if split not in source.splits:
        return None
    name = source.path + (f"/{source.name}" if source.name else "")
    require("data", f"task {task}'s dataset {name}")
    try:
        if Path(source.path).is_dir():
            from datasets import load_from_disk

            rows = load_from_disk(source.path)[source.splits[split]]
        else:
            from datasets import load_dataset

            rows = load_dataset(source.path, source.name, split=source.splits[split])
    except Exception as exc:  # network, hub or folder errors: say which dataset
        raise DataError(f"dataset {name} ({split}): could not be loaded: {exc}") from None
    columns = {c: source.columns.get(c, c) for c in (*definition.text, definition.label)}
    _check_columns(task, f"dataset {name} ({split})", list(rows.column_names), columns.values())
    return _usable(task, definition, f"dataset {name} ({split})", iter_dataset(rows), columns)


def read_cells(task: str, definition: TaskDefinition, split: str, location: DataLocation) -> list[Cells] | None:
    """Usable rows of ``split`` from the task's files or dataset (None: the split is not declared)."""
    if uses_dataset(definition, location):
        return read_dataset_cells(task, definition, split)
    return read_file_cells(task, definition, split, location)


def to_examples(cells: list[Cells], parse, task: str, label_column: str) -> list[Example]:
    """Examples with parsed labels; DataError naming the row and column of the first bad one."""
    examples = []
    for cell in cells:
        try:
            examples.append(Example(cell.texts, parse(cell.label)))
        except ValueError as exc:
            raise DataError(f"{cell.where}: column {label_column}: {exc} (task {task})") from None
    return examples
