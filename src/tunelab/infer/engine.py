"""``ChatEngine``: the one interface the CLI chat, the API server and the board talk to.

A backend only has to turn token ids into streamed text (``_submit``); rendering prompts with
the training template, context checks, reasoning / tool-call parsing, streaming to sync or async
callers and cancellation live here, so every backend behaves the same.
"""

from __future__ import annotations

import abc
import asyncio
import queue
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator

from tunelab.infer.limits import Limits
from tunelab.infer.loading import ServedModel
from tunelab.infer.params import SamplingParams
from tunelab.infer.prompt import THINK_OPEN, OutputParser, render_chat, template_features
from tunelab.infer.request import ChatDelta, ChatRequest, ChatResponse, Choice, RequestError

if TYPE_CHECKING:
    from tunelab.config.schema import Config


@dataclass
class Prepared:
    """A request made concrete: which model, the prompt ids, and per-answer settings."""

    served: ServedModel
    prompt_ids: list[int]
    params: list[SamplingParams]
    parsers: list[OutputParser]
    max_new_tokens: int


class Job:
    """A started request. Iterate it (``for`` or ``async for``, matching how it was started) for
    ChatDeltas; leaving the loop early, or ``close()``, stops its generation."""

    def __init__(self, prepared: Prepared, events: Any, cancel: Callable[[], None],
                 on_close: Callable[["Job"], None] = lambda job: None):
        self.prepared = prepared
        self.events = events
        self._cancel = cancel
        self._on_close = on_close
        self.closed = False
        self.open = set(range(len(prepared.params)))

    def close(self) -> None:
        """Stop generating whatever is unfinished (a client went away) and free the rows."""
        if not self.closed:
            self.closed = True
            self._cancel()
            self._on_close(self)

    @property
    def model(self) -> str:
        return self.prepared.served.name

    @property
    def prompt_tokens(self) -> int:
        return len(self.prepared.prompt_ids)

    def __iter__(self) -> Iterator[ChatDelta]:
        try:
            while self.open:
                yield from self._handle(self.events.get())
        finally:
            self.close()

    async def __aiter__(self) -> AsyncIterator[ChatDelta]:
        try:
            while self.open:
                for delta in self._handle(await self.events.get()):
                    yield delta
        finally:
            self.close()

    def response(self) -> ChatResponse:
        """An empty response to fill from this job's deltas."""
        choices = [Choice(i) for i in range(len(self.prepared.params))]
        return ChatResponse(model=self.model, choices=choices, prompt_tokens=self.prompt_tokens)

    def _handle(self, item: tuple[int, tuple]) -> list[ChatDelta]:
        index, event = item
        parser = self.prepared.parsers[index]
        if event[0] == "error":
            self.open.clear()
            raise event[1]
        if event[0] == "text":
            return [_delta(index, kind, text) for kind, text in parser.feed(event[1])]
        self.open.discard(index)
        rest, calls = parser.finish()
        deltas = [_delta(index, kind, text) for kind, text in rest]
        reason = "tool_calls" if calls and event[1] == "stop" else event[1]
        deltas.append(ChatDelta(index, tool_calls=calls or None, finish_reason=reason,
                                completion_tokens=event[2]))
        return deltas


def _delta(index: int, kind: str, text: str) -> ChatDelta:
    return ChatDelta(index, reasoning=text) if kind == "reasoning" else ChatDelta(index, content=text)


class ChatEngine(abc.ABC):
    """Base class of every backend. Public methods are safe to call from many threads or
    coroutines at once; backends batch concurrent requests."""

    def __init__(self, cfg: "Config", served: list[ServedModel]):
        self.cfg = cfg
        self.served = served
        self.defaults = SamplingParams.from_infer_args(cfg.infer)
        self.context_length: int | None = None
        self._live: set[Job] = set()
        self._lock = threading.Lock()
        # Fast tokenizers refuse concurrent calls ("Already borrowed"): prompts render one at a time.
        self._prompt_lock = threading.Lock()
        Limits.resolve(cfg.infer, None)  # a bad limit in the recipe fails before the model loads

    @property
    def limits(self) -> Limits:
        """What one request may ask for, from the recipe and the model's context length."""
        return Limits.resolve(self.cfg.infer, self.context_length)

    @property
    def active_requests(self) -> int:
        """Requests started and not yet finished or cancelled."""
        return len(self._live)

    # -- names -------------------------------------------------------------------------------
    @property
    def batch_stats(self) -> dict[str, int]:
        """Counters of the backend's batching (empty when the backend does its own)."""
        return {}

    @property
    def model_names(self) -> list[str]:
        """The names clients can ask for: the base first, then each adapter."""
        return [m.name for m in self.served]

    @property
    def default_model(self) -> str:
        """The last adapter when adapters are served (what the user just trained), else the base."""
        return self.served[-1].name

    def resolve(self, name: str | None) -> ServedModel:
        """The served model called ``name`` (None: the default); RequestError 404 otherwise."""
        name = name or self.default_model
        for served in self.served:
            if served.name == name:
                return served
        raise RequestError(f"model '{name}' is not served here; served: {', '.join(self.model_names)}",
                           param="model", code="model_not_found", status=404)

    # -- public API ----------------------------------------------------------------------------
    def start(self, request: ChatRequest) -> Job:
        """Begin answering; iterate the returned Job with ``for`` from any thread."""
        events: queue.Queue = queue.Queue()
        return self._launch(self._prepare(request), events, events.put)

    async def astart(self, request: ChatRequest) -> Job:
        """Begin answering; iterate the returned Job with ``async for`` in this event loop.
        Raises RequestError for a request that cannot be served. The prompt is rendered and
        tokenised in a worker thread, so a long one does not stall the other requests."""
        loop = asyncio.get_running_loop()
        prepared = await asyncio.to_thread(self._prepare, request)
        events: asyncio.Queue = asyncio.Queue()
        return self._launch(prepared, events,
                            lambda item: loop.call_soon_threadsafe(events.put_nowait, item))

    def stream(self, request: ChatRequest) -> Iterator[ChatDelta]:
        """Answer pieces as they are generated (blocking iterator)."""
        return iter(self.start(request))

    def generate(self, request: ChatRequest) -> ChatResponse:
        """Every answer, complete."""
        job = self.start(request)
        response = job.response()
        for delta in job:
            response.choices[delta.index].add(delta)
        return response

    async def agenerate(self, request: ChatRequest) -> ChatResponse:
        """Every answer, complete, without blocking the event loop."""
        job = await self.astart(request)
        response = job.response()
        async for delta in job:
            response.choices[delta.index].add(delta)
        return response

    def chat(self, messages: list[dict], **params: Any) -> str:
        """Convenience: the answer to ``messages`` with sampling settings given as keywords."""
        request = ChatRequest(messages=messages, params=self.defaults.updated(**params))
        return self.generate(request).text

    def close(self) -> None:
        """Stop background work; the engine cannot be used afterwards."""

    # -- shared machinery ----------------------------------------------------------------------
    def _launch(self, prepared: Prepared, events: Any, sink: Callable[[tuple], None]) -> Job:
        job = Job(prepared, events, lambda: None, self._forget)
        with self._lock:
            self._live.add(job)
        try:
            job._cancel = self._submit(prepared, sink)
        except BaseException:
            job.close()
            raise
        return job

    def _forget(self, job: Job) -> None:
        with self._lock:
            self._live.discard(job)

    def _prepare(self, request: ChatRequest) -> Prepared:
        served = self.resolve(request.model)
        limits = self.limits
        if not 1 <= request.n <= limits.choices:
            raise RequestError(f"must be between 1 and {limits.choices} (max_choices), got "
                               f"{request.n}", param="n", code="limit_exceeded")
        with self._prompt_lock:
            text, ids, parser_args = self._prompt(served, request)
        if limits.prompt_tokens is not None and len(ids) > limits.prompt_tokens:
            raise RequestError(f"the prompt has {len(ids)} tokens; this server takes at most "
                               f"{limits.prompt_tokens} (max_prompt_tokens)",
                               param="prompt" if request.messages is None else "messages",
                               code="context_length_exceeded")
        base = request.params or self.defaults
        max_new = self._budget(len(ids), base, request.max_total_tokens)
        # Row i samples with seed + i; past 2**63 - 1 that wraps (rows.py), so it is not re-checked.
        params = [base if base.seed is None else replace(base, seed=base.seed + i)
                  for i in range(request.n)]
        parsers = [OutputParser(**parser_args) for _ in params]
        return Prepared(served, ids, params, parsers, max_new)

    def _prompt(self, served: ServedModel, request: ChatRequest) -> tuple[str, list[int], dict]:
        tokenizer = served.tokenizer
        if request.messages is None:
            text = request.prompt or ""
            ids = tokenizer(text, add_special_tokens=True)["input_ids"]
            if not ids:
                raise RequestError("the prompt is empty", param="prompt")
            return text, ids, {}
        features = template_features(tokenizer)
        thinking = self.cfg.data.enable_thinking if request.enable_thinking is None else request.enable_thinking
        text = render_chat(tokenizer, request.messages, tools=request.tools, enable_thinking=thinking,
                           default_system=self.cfg.data.default_system)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        in_reasoning = features["think"] and text.rstrip().endswith(THINK_OPEN)
        return text, ids, {"think": features["think"], "tools": features["tools"] and bool(request.tools),
                           "in_reasoning": in_reasoning}

    def _budget(self, prompt_len: int, params: SamplingParams, total: int | None) -> int:
        """New-token budget within the model's context (and the request's ``max_total_tokens``);
        RequestError when the prompt leaves no room."""
        if total is not None and prompt_len >= total:
            raise RequestError(f"the prompt has {prompt_len} tokens, no room within the requested "
                               f"total of {total}", param="max_length", code="context_length_exceeded")
        budget = params.max_new_tokens if total is None else min(params.max_new_tokens, total - prompt_len)
        budget = min(budget, self.limits.answer_tokens or budget)
        limit = self.context_length
        if limit is None:
            return budget
        if prompt_len >= limit:
            raise RequestError(f"the prompt has {prompt_len} tokens but the model's context is "
                               f"{limit} tokens", param="messages", code="context_length_exceeded",
                               hint="shorten the conversation (e.g. /clear in the chat) or use a model "
                                    "with a longer context")
        return min(budget, limit - prompt_len)

    @abc.abstractmethod
    def _submit(self, prepared: Prepared, sink: Callable[[tuple], None]) -> Callable[[], None]:
        """Start generating ``len(prepared.params)`` answers, delivering ``(index, event)`` to
        ``sink`` from any thread; return a function that cancels whatever is still running.
        Each backend (Hugging Face, vLLM) implements this; everything else is shared."""


def create_engine(cfg: "Config") -> ChatEngine:
    """The backend the recipe's ``infer_backend`` names, loaded and ready. A reward model
    (stage rm) is refused: it scores texts (``tunelab score``), it does not generate."""
    from tunelab.infer.score import refuse_reward_models

    refuse_reward_models(cfg)
    if cfg.infer.infer_backend == "vllm":
        from tunelab.infer.vllm_engine import VllmChatEngine

        return VllmChatEngine(cfg)
    from tunelab.infer.hf_engine import HfChatEngine

    return HfChatEngine(cfg)

