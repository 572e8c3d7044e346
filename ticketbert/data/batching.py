"""Tokenising, length-grouped batching and dynamic padding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ticketbert.data.examples import Example


@dataclass
class EncodedSplit:
    """Token ids of every example: ``segments[s][i]`` is segment ``s`` of example ``i``."""

    segments: list[list[list[int]]]
    token_types: list[list[list[int]]]
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> list[int]:
        """Longest segment of each example: what its padded batch width depends on."""
        return [max(len(seg[i]) for seg in self.segments) for i in range(len(self))]

    def collate(self, indices: Sequence[int], pad_id: int) -> "Batch":
        """The padded batch of the examples at ``indices``."""
        return collate(self, indices, pad_id)

    def subset(self, indices: Sequence[int]) -> "EncodedSplit":
        return EncodedSplit(
            [[seg[i] for i in indices] for seg in self.segments],
            [[seg[i] for i in indices] for seg in self.token_types],
            self.labels[list(indices)],
        )


@dataclass
class Batch:
    """One padded batch; all segments share one width so the encoder runs once."""

    input_ids: torch.Tensor  # (segments * batch, width)
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    labels: torch.Tensor
    segments: int

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.input_ids.to(device), self.attention_mask.to(device),
                     self.token_type_ids.to(device), self.labels.to(device), self.segments)

    @property
    def tokens(self) -> int:
        """Real (non-padding) tokens in the batch."""
        return int(self.attention_mask.sum())


def encode(examples: list[Example], tokenizer, segments: int, max_length: int) -> EncodedSplit:
    """Tokenise ``examples``: each text its own segment, or (``segments == 1`` with two texts)
    the pair as one input with token types."""
    texts = list(zip(*(e.texts for e in examples)))
    if segments == len(texts):
        encoded = [tokenizer(list(column), truncation=True, max_length=max_length) for column in texts]
    else:  # a pair as one sequence (cross-encoder)
        encoded = [tokenizer(list(texts[0]), list(texts[1]), truncation=True, max_length=max_length)]
    token_types = [enc.get("token_type_ids") or [[0] * len(ids) for ids in enc["input_ids"]] for enc in encoded]
    labels = torch.tensor([e.label for e in examples], dtype=torch.float32)
    return EncodedSplit([enc["input_ids"] for enc in encoded], token_types, labels)


def collate(split: EncodedSplit, indices: Sequence[int], pad_id: int) -> Batch:
    """Pad the examples at ``indices`` to the longest segment among them."""
    rows = [seg[i] for seg in split.segments for i in indices]
    types = [seg[i] for seg in split.token_types for i in indices]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    token_type_ids = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (ids, tt) in enumerate(zip(rows, types)):
        input_ids[r, : len(ids)] = torch.tensor(ids)
        attention_mask[r, : len(ids)] = 1
        token_type_ids[r, : len(tt)] = torch.tensor(tt)
    return Batch(input_ids, attention_mask, token_type_ids, split.labels[list(indices)], len(split.segments))


def length_grouped_batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator | None,
                           group_factor: int = 50) -> list[list[int]]:
    """Batches of similar-length examples.

    With a generator: shuffle, cut into mega-batches of ``group_factor`` batches, sort each by
    length, split into batches and shuffle the batch order (as transformers'
    LengthGroupedSampler). Without one: sorted by length, for deterministic evaluation.
    """
    if generator is None:
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    order = torch.randperm(len(lengths), generator=generator).tolist()
    mega = batch_size * group_factor
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start: start + mega], key=lambda i: -lengths[i])
        batches.extend(chunk[i: i + batch_size] for i in range(0, len(chunk), batch_size))
    permutation = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in permutation]


def iterate_batches(split: EncodedSplit, batches: list[list[int]], pad_id: int) -> Iterator[Batch]:
    for indices in batches:
        yield collate(split, indices, pad_id)
