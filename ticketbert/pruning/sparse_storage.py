"""Compressed storage of masked matrices: the kept values in row-major order plus a bitmask
(one bit per weight), so a matrix at 50% takes (0.5 x 4 + 1/8) / 4 = 0.53 of its fp32 bytes.
A 2:4 matrix's bitmask is as small as its 2-bit positions (one bit per weight either way).

Tensors in the file: ``<key>.values`` and ``<key>.bitmask`` per matrix (``key``: the weight's
name in the saved state dict); the safetensors metadata records each matrix's shape and the
name its mask is attached under."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

SPARSE_FILE = "sparse.safetensors"
_BITS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def pack_bits(flags: torch.Tensor) -> torch.Tensor:
    """Booleans (any shape, read row-major) packed 8 to a byte, most significant bit first."""
    flat = flags.reshape(-1).to(torch.uint8)
    flat = torch.cat([flat, flat.new_zeros(-flat.numel() % 8)])
    return (flat.view(-1, 8) * _BITS).sum(1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, count: int) -> torch.Tensor:
    """The first ``count`` booleans of ``pack_bits``'s output."""
    return (packed[:, None] & _BITS).ne(0).reshape(-1)[:count]


@dataclass(frozen=True)
class SparseMatrix:
    """One masked matrix, stored as its kept values and a bitmask."""

    key: str  # the weight's name in the saved state dict
    mask_key: str  # the name its mask is attached under (``attach_masks``)
    values: torch.Tensor
    bitmask: torch.Tensor
    shape: tuple[int, ...]

    @classmethod
    def encode(cls, key: str, mask_key: str, weight: torch.Tensor, keep: torch.Tensor) -> "SparseMatrix":
        keep = keep.bool().cpu()
        return cls(key, mask_key, weight.detach().cpu()[keep].contiguous(), pack_bits(keep), tuple(weight.shape))

    @property
    def keep(self) -> torch.Tensor:
        return unpack_bits(self.bitmask, math.prod(self.shape)).view(self.shape)

    def decode(self) -> torch.Tensor:
        """The dense matrix: kept values in place, zeros elsewhere."""
        dense = self.values.new_zeros(self.shape)
        dense[self.keep] = self.values
        return dense


def write_sparse(matrices: list[SparseMatrix], path: Path) -> None:
    tensors = {f"{m.key}.{part}": getattr(m, part) for m in matrices for part in ("values", "bitmask")}
    meta = {m.key: {"shape": list(m.shape), "mask": m.mask_key} for m in matrices}
    save_file(tensors, str(path / SPARSE_FILE), metadata={"matrices": json.dumps(meta)})


def read_sparse(path: Path) -> list[SparseMatrix]:
    """The matrices ``write_sparse`` wrote to ``path`` (none when it holds no sparse file)."""
    if not (path / SPARSE_FILE).is_file():
        return []
    with safe_open(str(path / SPARSE_FILE), framework="pt") as handle:
        meta = json.loads(handle.metadata()["matrices"])
        return [SparseMatrix(key, info["mask"], handle.get_tensor(f"{key}.values"), handle.get_tensor(f"{key}.bitmask"),
                             tuple(info["shape"])) for key, info in meta.items()]


@dataclass
class StorageReport:
    """Bytes of the pruned matrices (stored vs dense) and of every file of a saved model."""

    matrices_dense_bytes: int
    matrices_stored_bytes: int
    file_bytes: int

    @property
    def matrices_ratio(self) -> float:
        return self.matrices_stored_bytes / max(self.matrices_dense_bytes, 1)


def storage_report(path: str | Path) -> StorageReport:
    """What a directory written by ``save_pruned`` holds: its files' bytes, and for a
    compressed save the sparse matrices' stored against dense bytes (0 and 0 otherwise)."""
    path = Path(path)
    matrices = [m for directory in (path, path / "encoder") for m in read_sparse(directory)]
    dense = sum(m.values.element_size() * math.prod(m.shape) for m in matrices)
    stored = sum(m.values.numel() * m.values.element_size() + m.bitmask.numel() for m in matrices)
    return StorageReport(dense, stored, sum(f.stat().st_size for f in path.rglob("*") if f.is_file()))
