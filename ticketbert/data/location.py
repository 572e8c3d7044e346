"""Where a run's examples come from, decided without reading them (cheap: no torch)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from ticketbert.config import DataConfig
from ticketbert.data.examples import DataError

DATA_DIR_ENV = "TICKETBERT_DATA_DIR"
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"  # the bundled real-data sample (package data)


class DataLocation(NamedTuple):
    """``source`` is csv, sample (csv files of the bundled sample), hub or synthetic."""

    source: str
    directory: Path | None


def resolve_source(config: DataConfig) -> DataLocation:
    """The source after applying ``auto``: ``data.dir`` or $TICKETBERT_DATA_DIR if given, else the
    bundled real sample. Synthetic data only when asked for (``data.source=synthetic``)."""
    directory = config.dir or (Path(os.environ[DATA_DIR_ENV]) if os.environ.get(DATA_DIR_ENV) else None)
    source = config.source
    if source == "auto":
        source = "csv" if directory is not None else "sample"
    if source == "sample":
        directory = SAMPLE_DIR
        if not directory.is_dir():
            raise DataError(f"{directory}: the bundled data sample is missing (a broken install?)")
    elif source == "csv":
        if directory is None:
            raise DataError("data.source is csv but neither data.dir nor $TICKETBERT_DATA_DIR is set")
        if not directory.is_dir():
            raise DataError(f"{directory}: data directory not found")
    else:
        directory = None
    return DataLocation(source, directory)
