"""Dynamic batching: rows that arrive together share one ``generate`` call.

A scheduler thread takes the first waiting row, lets others join for up to ``batch_wait_ms``
(or until ``max_batch_size`` rows), and runs one call for all of them. Rows that arrive while a
call runs wait for it to yield (``batch_slice_tokens``) or end. ``batching: continuous``
(``continuous.py``) lets them join at the next decoding step instead; this scheduler is kept for
models whose cache cannot be re-batched and as the fallback that retries a failed row alone.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable

from tunelab.errors import ModelError
from tunelab.estimate.advice import is_oom_error
from tunelab.infer.rows import Row


class BatchScheduler:
    """Collects rows from many threads into batches and runs them one batch at a time.

    Fair to short requests: while rows wait, a running batch yields after ``slice_tokens`` new
    tokens (see ``should_yield``); its unfinished rows queue again behind the newcomers and the
    next batch mixes both, so a long request shares the model instead of holding it.
    """

    def __init__(self, run_batch: Callable[[list[Row]], None], max_batch_size: int, wait_s: float,
                 slice_tokens: int = 0):
        self.run_batch = run_batch
        self.max_batch_size = max(1, max_batch_size)
        self.wait_s = max(0.0, wait_s)
        self.slice_tokens = max(0, slice_tokens)
        self.waiting: queue.Queue = queue.Queue()
        # How batching is going: shown by /health, asserted by tests, read by the benchmark.
        # steps / step_rows: decoding steps and the rows each computes (finished rows included:
        # generate keeps computing them as padding until the call ends).
        self.stats = {"batches": 0, "rows": 0, "largest_batch": 0, "yields": 0, "steps": 0,
                      "step_rows": 0}
        self.running = 0
        self.thread = threading.Thread(target=self._loop, name="tunelab-batcher", daemon=True)
        self.thread.start()

    def submit(self, rows: list[Row]) -> None:
        for row in rows:
            self.waiting.put(row)

    def should_yield(self, tokens_done: int) -> bool:
        """Whether the running batch should stop after ``tokens_done`` tokens to let rows in
        (asked once per decoding step)."""
        self.stats["steps"] += 1
        self.stats["step_rows"] += self.running
        if not self.slice_tokens or tokens_done < self.slice_tokens or self.waiting.empty():
            return False
        self.stats["yields"] += 1
        return True

    def close(self) -> None:
        self.waiting.put(None)
        self.thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            first = self.waiting.get()
            if first is None:
                return
            batch = [row for row in self._collect(first) if not row.done]
            if not batch:
                continue
            self.stats["batches"] += 1
            self.stats["rows"] += len(batch)
            self.stats["largest_batch"] = max(self.stats["largest_batch"], len(batch))
            self._run(batch)
            for row in batch:
                if not row.done and row.remaining <= 0:
                    row.finish("length")
                elif not row.done:  # it yielded: its next slice queues behind the newcomers
                    self.waiting.put(row)

    def _run(self, batch: list[Row]) -> None:
        self.running = len(batch)
        try:
            self.run_batch(batch)
        except Exception as exc:  # a failed batch must not fail innocent rows: retry each alone
            if len(batch) == 1:
                batch[0].fail(explain_failure(exc, batch))
                return
            for row in batch:
                if not row.done:
                    self._run([row])

    def _collect(self, first: Row) -> list[Row]:
        batch = [first]
        # A row continuing after a yield does not wait for company: the queue already has it.
        deadline = time.monotonic() + (0.0 if first.generated else self.wait_s)
        while len(batch) < self.max_batch_size:
            try:
                row = self.waiting.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if row is None:  # close() was called: finish this batch, then stop
                self.waiting.put(None)
                break
            batch.append(row)
        return batch


def explain_failure(exc: Exception, batch: list[Row]) -> Exception:
    """A generation failure as the user should read it (out of memory says what to lower)."""
    if is_oom_error(exc) and batch:
        longest = max(len(r.prompt_ids) + r.max_new_tokens for r in batch)
        return ModelError(f"out of memory generating a batch of {len(batch)} rows of up to "
                          f"{longest} tokens", where="generation",
                          hint="lower max_batch_size or max_new_tokens, or shorten the prompts")
    return exc
