"""One batch row's life inside a shared ``generate`` call.

Each row keeps its own decoded text, stop strings, token budget and random generator, so rows
that share a generate call behave exactly as if they ran alone: a row samples with its own
``torch.Generator`` (seeded requests are reproducible whatever else is in the batch) and stops on
its own, while the others go on.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from tunelab.infer.params import SamplingParams

Emit = Callable[[tuple], None]


@dataclass
class Row:
    """A prompt being answered. ``emit`` receives ``("text", str)`` pieces, then one
    ``("done", finish_reason, completion_tokens)`` or ``("error", exception)``."""

    prompt_ids: list[int]
    params: SamplingParams
    emit: Emit
    decode: Callable[[list[int]], str]
    stop_ids: frozenset[int]
    adapter: str | None = None
    model: str = ""  # the served name, for error messages
    max_new_tokens: int = 0
    ids: list[int] = field(default_factory=list)
    generated: int = 0
    sent: int = 0
    finished: str | None = None
    cancelled: bool = False
    generator: Any = None

    def __post_init__(self) -> None:
        self.max_new_tokens = self.max_new_tokens or self.params.max_new_tokens

    @property
    def context_ids(self) -> list[int]:
        """Prompt plus the answer so far: what a later generate call continues from."""
        return self.prompt_ids + self.ids

    @property
    def remaining(self) -> int:
        return self.max_new_tokens - self.generated

    @property
    def done(self) -> bool:
        return self.finished is not None or self.cancelled

    def push(self, token: int) -> None:
        """Take the row's next token: stream the text it completes, stop when a rule says so."""
        if self.done:
            return
        self.generated += 1
        if token in self.stop_ids:
            self.finish("stop")
            return
        self.ids.append(token)
        text = self.decode(self.ids)
        cut = _first_stop(text, self.params.stop, self.sent)
        if cut is not None:
            self._send(text[:cut])
            self.finish("stop")
            return
        self._send(text[:_safe_length(text, self.params.stop)])
        if self.generated >= self.max_new_tokens:
            self.finish("length")

    def finish(self, reason: str) -> None:
        """Flush the rest of the text (bounded by any stop string) and report the end once."""
        if self.finished is not None:
            return
        if reason == "length":
            text = self.decode(self.ids)
            self._send(text.rstrip("\ufffd"))
        self.finished = reason
        if not self.cancelled:
            self.emit(("done", reason, self.generated))

    def fail(self, exc: BaseException) -> None:
        if self.finished is None:
            self.finished = "error"
            self.emit(("error", exc))

    def _send(self, text: str) -> None:
        if len(text) > self.sent and not self.cancelled:
            self.emit(("text", text[self.sent:]))
            self.sent = len(text)


def _first_stop(text: str, stops: tuple[str, ...], sent: int) -> int | None:
    """Index where the earliest stop string starts, looking only at text not yet streamed."""
    if not stops:
        return None
    start = max(0, sent - max(len(s) for s in stops))
    hits = [i for i in (text.find(s, start) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _safe_length(text: str, stops: tuple[str, ...]) -> int:
    """How much of ``text`` can be streamed now: not a half-decoded character, and not a tail
    that could still become a stop string."""
    end = len(text.rstrip("\ufffd"))
    hold = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, end), 0, -1):
            if text[:end].endswith(stop[:size]):
                hold = max(hold, size)
                break
    return end - hold


class RowSampler:
    """Logits processor that samples every sampling row with its own generator and settings.

    ``generate`` runs in greedy mode; this processor turns each sampling row's scores into a
    one-hot choice, so argmax returns the token the row drew. Greedy rows keep their scores. A row
    whose scores are not finite, or whose sampling fails, fails alone; the batch goes on.
    """

    def __init__(self, rows: list[Row]):
        self.rows = rows

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        scores = apply_repetition_penalty(input_ids, scores, self.rows)
        broken = torch.isnan(scores).any(dim=-1) | ~torch.isfinite(scores.max(dim=-1).values)
        for i, row in enumerate(self.rows):
            if row.done:
                continue
            if broken[i]:
                row.fail(_not_finite(row))
            elif not row.params.greedy:
                token = guarded(row, _sample, scores[i], row)
                if token is not None:
                    scores[i] = torch.full_like(scores[i], float("-inf"))
                    scores[i, token] = 0.0
            if row.finished == "error":
                scores[i] = torch.zeros_like(scores[i])  # any token: the row is over
        return scores


def guarded(row: Row, work: Callable[..., Any], *args: Any) -> Any:
    """``work(*args)``, or None after failing ``row`` with what it raised (the others go on)."""
    try:
        return work(*args)
    except Exception as exc:
        row.fail(exc)
        return None


def _not_finite(row: Row) -> Exception:
    from tunelab.errors import ModelError

    return ModelError(f"model '{row.model}' produced NaN or infinite scores for this request",
                      where="generation", hint="weights from a diverged training run hold NaN or "
                      "inf: retrain with a lower learning rate, or serve an earlier checkpoint")


def apply_repetition_penalty(input_ids: Any, scores: Any, rows: list[Row]) -> Any:
    """Each row's scores of the tokens in its ``input_ids`` penalised by its own
    ``repetition_penalty`` (negative scores multiplied, positive ones divided)."""
    import torch

    penalties = [row.params.repetition_penalty for row in rows]
    if all(p == 1.0 for p in penalties):
        return scores
    penalty = torch.tensor(penalties, dtype=scores.dtype, device=scores.device)[:, None]
    seen = torch.gather(scores, 1, input_ids)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    # A penalty near zero divides into infinity; the largest finite score keeps the order.
    seen = seen.clamp(max=torch.finfo(scores.dtype).max)
    return scores.scatter(1, input_ids, seen)


def filtered_logits(logits: Any, params: SamplingParams) -> Any:
    """One row's logits after temperature, top-k and top-p (dropped tokens are -inf), in float64
    and shifted so the best token scores 0: any temperature > 0, however small, stays finite."""
    import torch

    logits = logits.double()
    logits = (logits - logits.max()) / params.temperature
    if 0 < params.top_k < logits.numel():
        kth = torch.topk(logits, params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Keep the smallest prefix whose mass reaches top_p, and always the best token.
        drop = probs.cumsum(-1) - probs >= params.top_p
        drop[0] = False
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    return logits


def _sample(logits: Any, row: Row) -> int:
    """One token from the row's filtered logits, drawn with the row's own generator."""
    import torch

    logits = filtered_logits(logits, row.params)
    if row.generator is None:
        seed = row.params.seed if row.params.seed is not None else secrets.randbits(62)
        row.generator = torch.Generator(device=logits.device)
        row.generator.manual_seed(seed % (1 << 64))  # seed + row index may pass 2**63 - 1
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=row.generator))


class RowStopper:
    """Stopping criterion that feeds each row its newest token and reports which rows are done;
    ``should_yield(tokens_done)`` may end the whole call early (the rows go on in a later one)."""

    def __init__(self, rows: list[Row], should_yield: Callable[[int], bool] = lambda n: False):
        self.rows = rows
        self.should_yield = should_yield
        self.steps = 0

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        self.steps += 1
        last = input_ids[:, -1].tolist()
        for row, token in zip(self.rows, last):
            guarded(row, row.push, token)
        if self.should_yield(self.steps):
            return torch.ones(len(self.rows), dtype=torch.bool, device=input_ids.device)
        return torch.tensor([row.done for row in self.rows], dtype=torch.bool, device=input_ids.device)
