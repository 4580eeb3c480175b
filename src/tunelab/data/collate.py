"""Packing samples into rows, and turning rows into model batches.

Packed rows keep samples apart: ``position_ids`` restart at 0 for every sample, which is how
transformers (sdpa, FlashAttention) recognises sequence boundaries when no attention mask is
given, and the first label of every sample is -100 so no token is trained to predict across a
boundary (the model shifts labels by one).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from tunelab.data.encode import IGNORE_INDEX


def _first_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Sample indices grouped into bins of at most ``capacity`` tokens (best fit, longest first)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, bin index), sorted, so bisect finds the tightest fit
    for i in order:
        pos = bisect.bisect_left(free, (lengths[i], -1))
        if pos == len(free):
            bins.append([i])
            room, b = capacity - lengths[i], len(bins) - 1
        else:
            room, b = free.pop(pos)
            bins[b].append(i)
            room -= lengths[i]
        bisect.insort(free, (room, b))
    return bins


def _join(samples: list[dict]) -> dict:
    """One packed row from samples: concatenated ids and labels, per-sample position ids."""
    row = {"input_ids": [], "labels": [], "position_ids": []}
    for sample in samples:
        n = len(sample["input_ids"])
        row["input_ids"] += sample["input_ids"]
        row["labels"] += [IGNORE_INDEX] + list(sample["labels"][1:])
        row["position_ids"] += list(range(n))
    return row


def pack_rows(rows: list[dict], cutoff_len: int) -> list[dict]:
    """Samples (each at most ``cutoff_len`` tokens) packed into rows of at most ``cutoff_len``."""
    too_long = [len(r["input_ids"]) for r in rows if len(r["input_ids"]) > cutoff_len]
    if too_long:
        raise ValueError(f"pack_rows got a sample of {too_long[0]} tokens > cutoff_len {cutoff_len}")
    bins = _first_fit_decreasing([len(r["input_ids"]) for r in rows], cutoff_len)
    return [_join([rows[i] for i in sorted(b)]) for b in bins]


def split_long(rows: list[dict], cutoff_len: int) -> list[dict]:
    """Pre-training samples cut into pieces of at most ``cutoff_len`` (nothing is thrown away)."""
    out = []
    for row in rows:
        ids, labels = row["input_ids"], row["labels"]
        out += [{"input_ids": ids[i:i + cutoff_len], "labels": labels[i:i + cutoff_len]}
                for i in range(0, len(ids), cutoff_len)]
    return out


def concat_blocks(rows: list[dict], cutoff_len: int) -> list[dict]:
    """LLaMA-Factory's pre-training without packing: all texts joined, cut into ``cutoff_len``
    blocks (a block may span two texts; the eos between them marks the seam)."""
    ids = [tok for row in rows for tok in row["input_ids"]]
    blocks = [ids[i:i + cutoff_len] for i in range(0, len(ids), cutoff_len)]
    return [{"input_ids": b, "labels": list(b)} for b in blocks]


@dataclass
class PaddingCollator:
    """Right-pads a batch: ``input_ids`` with ``pad_token_id``, ``labels`` with -100, plus
    ``attention_mask``; lengths rounded up to ``pad_to_multiple_of`` (kernel-friendly shapes)."""

    pad_token_id: int
    pad_to_multiple_of: int | None = 8

    def __call__(self, features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {"input_ids": [], "labels": [], "attention_mask": []}
        for f in features:
            n, pad = len(f["input_ids"]), longest - len(f["input_ids"])
            batch["input_ids"].append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            batch["labels"].append(list(f["labels"]) + [IGNORE_INDEX] * pad)
            batch["attention_mask"].append([1] * n + [0] * pad)
        return {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}


@dataclass
class PackedCollator:
    """Batches of packed rows, samples kept apart by restarting ``position_ids``.

    ``flatten=True`` (for varlen kernels such as FlashAttention 2) concatenates the batch into ONE
    padding-free row of shape ``(1, total)``. Otherwise each packed row stays a row, padded at
    its end to the longest: kernels without varlen support pay attention cost quadratic in the
    row length, so one 4x-longer row would cost 4x more than four rows. The padding forms its
    own segment (positions restart at 0, labels ignored), so no real token ever sees it.

    The batch carries ``use_cache=False``: transformers 5 only derives sample boundaries from
    ``position_ids`` when no KV cache exists, and a model whose config says ``use_cache: true``
    builds one even in training, silently letting samples attend to each other.
    """

    def __init__(self, pad_token_id: int = 0, flatten: bool = True, pad_to_multiple_of: int = 8):
        self.pad_token_id = pad_token_id
        self.flatten = flatten
        self.multiple = pad_to_multiple_of

    def __call__(self, features: list[dict]) -> dict:
        import torch

        rows = [self._row(f) for f in features]
        if self.flatten:
            rows = [tuple(sum((list(r[i]) for r in rows), []) for i in range(3))]
        width = max(len(r[0]) for r in rows)
        if not self.flatten:
            width = -(-width // self.multiple) * self.multiple
        ids, labels, positions = zip(*(self._pad(r, width) for r in rows))
        return {"input_ids": torch.tensor(ids, dtype=torch.long),
                "labels": torch.tensor(labels, dtype=torch.long),
                "position_ids": torch.tensor(positions, dtype=torch.long),
                "use_cache": False}

    @staticmethod
    def _row(f: dict) -> tuple[list, list, list]:
        n = len(f["input_ids"])
        # a row boundary is always a sample boundary, whatever the row's own first label
        labels = [IGNORE_INDEX] + list(f["labels"][1:])
        positions = list(f["position_ids"]) if "position_ids" in f else list(range(n))
        return list(f["input_ids"]), labels, positions

    def _pad(self, row: tuple[list, list, list], width: int) -> tuple[list, list, list]:
        gap = width - len(row[0])
        return (row[0] + [self.pad_token_id] * gap, row[1] + [IGNORE_INDEX] * gap,
                row[2] + list(range(gap)))
