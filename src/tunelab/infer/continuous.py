"""Continuous batching: a request joins the running batch at the next decoding step.

One scheduler thread decodes the running rows one token per step (``decode.py``). Before each
step it lets waiting rows in, up to ``max_batch_size``: they are prefilled together and merged
into the batch, so a new request waits for one step and its own prefill, not for the batch to
end (dynamic batching, ``batching.py``, makes it wait for the running ``generate`` call to
yield or finish). Finished and cancelled rows leave at once. When the batch is full and rows
wait, a row that has run ``batch_slice_tokens`` tokens since it joined gives its place up and
queues again (fair share; it resumes from its answer so far).

Why not transformers' own ``ContinuousBatchingManager``: it swaps the attention for a paged one
and only takes its own per-request processors, so PEFT's mixed-adapter batches and each row's
seeded generator, repetition penalty and stop rules (``rows.py``) would be lost.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable

from tunelab.errors import ModelError
from tunelab.infer.batching import explain_failure
from tunelab.infer.decode import Decoder, DecodeState
from tunelab.infer.rows import Row


class ContinuousScheduler:
    """Same interface as ``BatchScheduler`` (``submit``, ``close``, ``stats``). ``fallback``
    runs rows with ``generate``: rows of a failed step are retried that way, one at a time."""

    def __init__(self, decoder: Decoder, fallback: Callable[[list[Row]], None], max_batch_size: int,
                 wait_s: float, slice_tokens: int = 0):
        self.decoder = decoder
        self.fallback = fallback
        self.max_batch_size = max(1, max_batch_size)
        self.wait_s = max(0.0, wait_s)
        self.slice_tokens = max(0, slice_tokens)
        self.waiting: queue.Queue = queue.Queue()
        self.closing = False
        self.joined_at: dict[int, int] = {}  # id(row) -> its token count when it joined
        # batches: runs started from idle; yields: times waiting rows entered a running batch
        # (joins and fair-share preemptions); steps / step_rows: decoding steps and rows in them.
        self.stats = {"batches": 0, "rows": 0, "largest_batch": 0, "yields": 0, "steps": 0,
                      "step_rows": 0, "preempted": 0}
        self.thread = threading.Thread(target=self._loop, name="tunelab-continuous", daemon=True)
        self.thread.start()

    def submit(self, rows: list[Row]) -> None:
        for row in rows:
            self.waiting.put(row)

    def should_yield(self, tokens_done: int) -> bool:
        """Rows retried through ``generate`` run to their end (no one else is in that call)."""
        return False

    def close(self) -> None:
        self.waiting.put(None)
        self.thread.join(timeout=30)

    def _loop(self) -> None:
        import torch

        # Inference mode for the whole thread: caches and logits are inference tensors, and
        # sampling writes into the scores in place.
        with torch.inference_mode():
            self._serve()

    def _serve(self) -> None:
        state: DecodeState | None = None
        while True:
            if state is None:
                first = self.waiting.get()
                if first is None:
                    return
                state = self._admit(None, self._collect(first))
                if state is not None:
                    self.stats["batches"] += 1
            else:
                state = self._preempt(state)
                room = self.max_batch_size - (len(state.rows) if state else 0)
                state = self._admit(state, self._arrivals(room))
            if self.closing:
                self._abandon(state)
                return
            if state is not None:
                state = self._step(state)

    def _collect(self, first: Row) -> list[Row]:
        """The first row of an idle engine waits up to ``wait_s`` for company (one prefill)."""
        batch = [first]
        deadline = time.monotonic() + (0.0 if first.generated else self.wait_s)
        while len(batch) < self.max_batch_size:
            try:
                row = self.waiting.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if not self._take(row, batch):
                break
        return batch

    def _arrivals(self, room: int) -> list[Row]:
        """Rows waiting now, at most ``room`` of them (no waiting: the batch is running)."""
        rows: list[Row] = []
        while len(rows) < room:
            try:
                row = self.waiting.get_nowait()
            except queue.Empty:
                break
            if not self._take(row, rows):
                break
        return rows

    def _take(self, row: Row | None, into: list[Row]) -> bool:
        if row is None:  # close() was called: stop after this step
            self.closing = True
            return False
        if not row.done:
            into.append(row)
        return True

    def _admit(self, state: DecodeState | None, rows: list[Row]) -> DecodeState | None:
        """Prefill ``rows`` and merge them into ``state`` (a new state when there is none)."""
        rows = [row for row in rows if not row.done]
        if not rows:
            return state
        joined = self._prefill(rows)
        self.stats["rows"] += len(rows)
        if joined is None:
            return state
        for row in joined.rows:
            self.joined_at[id(row)] = row.generated
        if state is None or not state.rows:
            state = joined
        else:
            self.stats["yields"] += 1
            state.merge(joined)
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(state.rows))
        return self._settle(state)

    def _prefill(self, rows: list[Row]) -> DecodeState | None:
        """The rows' prefill; if it fails, each row alone (one bad row fails only itself)."""
        try:
            return self.decoder.prefill(rows)
        except Exception as exc:
            if len(rows) == 1:
                rows[0].fail(explain_failure(exc, rows))
                return None
        states = [s for s in (self._prefill([row]) for row in rows) if s is not None]
        for other in states[1:]:
            states[0].merge(other)
        return states[0] if states else None

    def _step(self, state: DecodeState) -> DecodeState | None:
        self.stats["steps"] += 1
        self.stats["step_rows"] += len(state.rows)
        try:
            self.decoder.step(state)
        except Exception:  # retry each row with generate, alone, from its answer so far
            self._retry_alone(state.rows)
            return None
        return self._settle(state)

    def _settle(self, state: DecodeState) -> DecodeState | None:
        """Let finished, cancelled and failed rows go; None when no row is left."""
        for row in state.rows:
            if not row.done and row.remaining <= 0:
                row.finish("length")
        for row in state.rows:
            if row.done:
                self.joined_at.pop(id(row), None)
        state.drop_done()
        return state if state.rows else None

    def _preempt(self, state: DecodeState) -> DecodeState | None:
        """When the batch is full and rows wait, rows that ran ``slice_tokens`` since joining
        queue again behind them (longest-running first, one per waiting row); None when no row
        is left running."""
        if not self.slice_tokens or len(state.rows) < self.max_batch_size or self.waiting.empty():
            return state
        served = [r for r in state.rows if r.generated - self.joined_at.get(id(r), 0) >= self.slice_tokens]
        served.sort(key=lambda r: self.joined_at.get(id(r), 0) - r.generated)
        leaving = served[:self.waiting.qsize()]
        if not leaving:
            return state
        state.drop(leaving)
        self.stats["preempted"] += len(leaving)
        for row in leaving:
            self.joined_at.pop(id(row), None)
            self.waiting.put(row)
        return state if state.rows else None

    def _retry_alone(self, rows: list[Row]) -> None:
        for row in rows:
            if row.done:
                continue
            try:
                self.fallback([row])
            except Exception as exc:
                row.fail(explain_failure(exc, [row]))
            if not row.done and row.remaining <= 0:
                row.finish("length")

    def _abandon(self, state: DecodeState | None) -> None:
        """The engine is closing: end whatever is still running, so no caller waits forever."""
        for row in state.rows if state is not None else []:
            row.fail(ModelError("the chat engine was closed while answering", where="generation"))
