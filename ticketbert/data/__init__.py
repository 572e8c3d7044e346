"""Task data: sources (a task's files or dataset, the CS224N files, the bundled sample,
synthetic), tokenising and batching.

Names load on first use, so that deciding where the data lives (``resolve_source``) does not
import torch: a command line answers a bad argument before any heavy import.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ticketbert.data.examples import DataError, Example
from ticketbert.data.location import DATA_DIR_ENV, SAMPLE_DIR, DataLocation, resolve_source

_LAZY = {
    "ticketbert.data.batching": ("Batch", "EncodedSplit", "collate", "encode", "iterate_batches",
                                 "length_grouped_batches"),
    "ticketbert.data.readers": ("read_table",),
    "ticketbert.data.synthetic": ("synthetic_split",),
    "ticketbert.data.sources": ("RawTaskData", "SYNTHETIC_WARNING", "data_fingerprint", "file_sha256", "read_task",
                                "warn_if_synthetic"),
    "ticketbert.data.run_data": ("read_run_data", "run_definitions"),
    "ticketbert.data.encoding": ("TaskData", "encode_task"),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _MODULE_OF:
        return getattr(import_module(_MODULE_OF[name]), name)
    raise AttributeError(f"module 'ticketbert.data' has no attribute {name!r}")


__all__ = ["DATA_DIR_ENV", "SAMPLE_DIR", "DataError", "DataLocation", "Example", "resolve_source", *_MODULE_OF]
