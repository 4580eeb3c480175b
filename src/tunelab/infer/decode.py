"""Step-by-step decoding of a batch whose rows come and go (the model side of continuous batching).

A :class:`DecodeState` holds the running rows and one KV cache for all of them, left-padded to a
common length: row ``i``'s real tokens are the columns where ``mask[i]`` is 1, and each row keeps
its own next position, so padding changes no position and no attention score. New rows are
prefilled in one forward of their own, then their cache is padded and concatenated to the
running one (:meth:`DecodeState.merge`); finished rows are dropped and columns that only hold
padding are cut (:meth:`DecodeState.drop_done`).

The forward, the cache classes and the sampling are the libraries' and ours from ``rows.py``
(each row's own generator, stop rules and repetition penalty); ``generate`` has no way to let a
row in between two of its steps, so this module owns only that loop.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

from tunelab.infer.rows import Row, RowSampler, guarded


def supports_continuous(model: Any) -> bool:
    """Whether the model's cache can be re-batched here: every layer a plain ``DynamicLayer``
    (full attention; sliding-window, static, quantized and linear-attention caches are not) and
    a forward that takes the cache by name."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if _cache_keyword(base) is None:
        return False
    try:
        layers = DynamicCache(config=base.config).layers
    except Exception:  # a config the cache cannot read: let generate handle the model
        return False
    return all(type(layer) is DynamicLayer for layer in layers)


def _cache_keyword(base: Any) -> str | None:
    params = inspect.signature(base.forward).parameters
    return next((name for name in ("cache", "past_key_values") if name in params), None)


@dataclass
class DecodeState:
    """Rows decoding together: ``mask`` (rows x cached columns), each row's next position and
    the token each row feeds in at the next step."""

    rows: list[Row]
    cache: Any
    mask: Any
    next_position: Any
    last: Any

    def merge(self, other: "DecodeState") -> None:
        """Take ``other``'s rows in, padding the shorter cache on the left."""
        import torch

        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.keys = torch.cat([_left(mine.keys, width, 2), _left(theirs.keys, width, 2)])
            mine.values = torch.cat([_left(mine.values, width, 2), _left(theirs.values, width, 2)])
        self.mask = torch.cat([_left(self.mask, width, 1), _left(other.mask, width, 1)])
        self.next_position = torch.cat([self.next_position, other.next_position])
        self.last = torch.cat([self.last, other.last])
        self.rows = self.rows + other.rows

    def drop(self, leaving: list[Row]) -> None:
        """Remove ``leaving`` (finished, cancelled or preempted rows) and the padding-only columns."""
        import torch

        gone = {id(row) for row in leaving}  # rows compare by identity, not by their fields
        keep = [i for i, row in enumerate(self.rows) if id(row) not in gone]
        if len(keep) == len(self.rows):
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.rows = [self.rows[i] for i in keep]
        self.mask, self.next_position, self.last = self.mask[index], self.next_position[index], self.last[index]
        if self.rows:
            self._trim()

    def drop_done(self) -> None:
        self.drop([row for row in self.rows if row.done])

    def _trim(self) -> None:
        """Cut leading columns that no remaining row attends to (the departed rows' length)."""
        start = int(self.mask.any(dim=0).int().argmax())
        if start == 0:
            return
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]
        self.mask = self.mask[:, start:]


def _left(tensor: Any, width: int, dim: int) -> Any:
    """``tensor`` zero-padded on the left of dimension ``dim`` to ``width``."""
    import torch.nn.functional as F

    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    pad = [0, 0] * (tensor.dim() - 1 - dim) + [missing, 0]
    return F.pad(tensor, pad)


class Decoder:
    """Prefill and decode steps on one model (plus PEFT adapters, mixed in one batch)."""

    def __init__(self, model: Any, pad_id: int | None, mixed: bool):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.model = model
        self.pad_id = 0 if pad_id is None else pad_id  # pad columns are masked: any id will do
        self.mixed = mixed
        self.cache_keyword = _cache_keyword(base) or "past_key_values"
        self.keep_last = "logits_to_keep" in inspect.signature(base.forward).parameters

    def prefill(self, rows: list[Row]) -> DecodeState:
        """One forward over the rows' prompts (and answers so far, for a row let back in after a
        preemption); each row takes its next token."""
        import torch
        from transformers import DynamicCache

        ids, mask = self._left_pad([row.context_ids for row in rows])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        logits = self._forward(rows, ids, mask, positions, cache)
        state = DecodeState(rows, cache, mask, positions[:, -1] + 1, torch.empty(0))
        state.last = self._choose(rows, logits)
        return state

    def step(self, state: DecodeState) -> None:
        """Every row feeds its last token and takes the next."""
        import torch

        ones = torch.ones((len(state.rows), 1), dtype=state.mask.dtype, device=state.mask.device)
        mask = torch.cat([state.mask, ones], dim=1)
        logits = self._forward(state.rows, state.last[:, None], mask, state.next_position[:, None],
                               state.cache)
        state.mask = mask
        state.next_position = state.next_position + 1
        state.last = self._choose(state.rows, logits)

    def _forward(self, rows: list[Row], ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
        import torch

        kwargs: dict[str, Any] = {self.cache_keyword: cache}
        if self.keep_last:
            kwargs["logits_to_keep"] = 1
        if self.mixed:
            kwargs["adapter_names"] = [row.adapter or "__base__" for row in rows]
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=True, **kwargs)  # the scheduler thread runs in inference mode
        return out.logits[:, -1, :].to(dtype=torch.float32)  # as generate scores them

    def _choose(self, rows: list[Row], logits: Any) -> Any:
        """Each row's next token (greedy, or drawn by RowSampler), pushed to the row."""
        history = self._history(rows) if any(r.params.repetition_penalty != 1.0 for r in rows) else None
        scores = RowSampler(rows)(history, logits)  # history is only read for repetition penalty
        tokens = scores.argmax(dim=-1)
        for row, token in zip(rows, tokens.tolist()):
            guarded(row, row.push, token)
        return tokens

    def _history(self, rows: list[Row]) -> Any:
        """Every row's tokens so far, left-padded with its own first token, so the penalty sees
        exactly the row's tokens (a repeated token is penalised once)."""
        import torch

        contexts = [row.context_ids for row in rows]
        width = max(len(c) for c in contexts)
        padded = [[c[0]] * (width - len(c)) + c for c in contexts]
        return torch.tensor(padded, dtype=torch.long, device=self.model.device)

    def _left_pad(self, prompts: list[list[int]]) -> tuple[Any, Any]:
        import torch

        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            mask[i, width - len(prompt):] = 1
        return ids.to(self.model.device), mask.to(self.model.device)
