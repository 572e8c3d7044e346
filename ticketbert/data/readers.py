"""Rows of a data file: CSV, TSV, JSONL or Parquet, each row numbered as a person finds it
(the file's line for text formats, the 1-based row for Parquet). Torch-free."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ticketbert.data.examples import DataError
from ticketbert.extras import require

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class Row:
    """One record: ``values`` by column, or ``problem`` when it cannot be read as one (a field missing)."""

    where: str  # "line 12", "row 3"
    values: dict[str, object] | None
    problem: str | None = None


@dataclass(frozen=True)
class Table:
    path: Path
    columns: list[str]
    rows: list[Row]


def file_format(path: Path, declared: str | None = None) -> str:
    """The declared format, else the one the extension names; DataError otherwise."""
    if declared is not None:
        return declared
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use one of {', '.join(FORMATS)} "
                        f"(or the task's format)") from None


def _text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})") from None


def _delimited(path: Path, delimiter: str) -> Table:
    reader = csv.reader(io.StringIO(_text(path), newline=""), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise DataError(f"{path}: empty file, expected a header row")
    rows = []
    for fields in reader:
        where = f"line {reader.line_num}"
        if len(fields) != len(header):
            rows.append(Row(where, None, f"{len(fields)} fields, expected {len(header)}"))
        else:
            rows.append(Row(where, dict(zip(header, fields))))
    return Table(path, header, rows)


def _jsonl(path: Path) -> Table:
    rows, columns = [], {}
    for number, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}: line {number}: expected a JSON object, got {type(record).__name__}")
        columns.update(dict.fromkeys(record))
        rows.append(Row(f"line {number}", record))
    return Table(path, list(columns), rows)


def _parquet(path: Path) -> Table:
    require("data", f"reading {path}")
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow's errors name no file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    records = table.to_pylist()
    return Table(path, table.column_names, [Row(f"row {i}", record) for i, record in enumerate(records, start=1)])


def read_table(path: Path, declared_format: str | None = None) -> Table:
    """Every row of ``path``; DataError naming the file for a missing, empty or unreadable one."""
    path = Path(path)
    kind = file_format(path, declared_format)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if kind in ("csv", "tsv"):
        return _delimited(path, "," if kind == "csv" else "\t")
    return _jsonl(path) if kind == "jsonl" else _parquet(path)


def iter_dataset(rows) -> Iterator[Row]:
    """Rows of a ``datasets`` split, numbered from 1."""
    for index, record in enumerate(rows, start=1):
        yield Row(f"row {index}", dict(record))
