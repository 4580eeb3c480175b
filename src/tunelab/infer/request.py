"""What a caller asks a chat engine for, and what it gets back (streamed or whole)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tunelab.errors import ConfigError
from tunelab.infer.params import SamplingParams


class RequestError(ConfigError):
    """A request the engine cannot serve as asked. ``param`` names the request field, ``code``
    is a stable machine-readable reason, ``status`` the HTTP status the API answers with."""

    kind = "request error"

    def __init__(self, problem: str, *, param: str | None = None, code: str = "invalid_request",
                 status: int = 400, hint: str | None = None):
        self.param, self.code, self.status = param, code, status
        super().__init__(problem, where=f"'{param}'" if param else None, hint=hint)


@dataclass
class ChatRequest:
    """One request. Give ``messages`` (chat, rendered with the chat template) or ``prompt``
    (raw completion text, no template). ``model`` picks a served name; None means the last
    adapter if any, else the base. ``n`` answers are generated for the same prompt;
    ``max_total_tokens`` bounds prompt plus answer (the legacy endpoint's ``max_length``)."""

    messages: list[dict] | None = None
    prompt: str | None = None
    model: str | None = None
    params: SamplingParams | None = None
    tools: list[dict] | None = None
    n: int = 1
    enable_thinking: bool | None = None
    max_total_tokens: int | None = None


@dataclass
class ChatDelta:
    """A streamed piece of answer ``index``. The last piece of each answer has ``finish_reason``
    (stop, length, tool_calls) and, when the template defines tool calls, ``tool_calls``."""

    index: int
    content: str = ""
    reasoning: str = ""
    tool_calls: list[dict] | None = None
    finish_reason: str | None = None
    completion_tokens: int = 0


@dataclass
class Choice:
    """One complete answer: ``reasoning`` is what a reasoning template put inside <think>."""

    index: int
    content: str = ""
    reasoning: str = ""
    tool_calls: list[dict] = field(default_factory=list)
    finish_reason: str | None = None
    completion_tokens: int = 0

    def add(self, delta: ChatDelta) -> None:
        self.content += delta.content
        self.reasoning += delta.reasoning
        self.tool_calls.extend(delta.tool_calls or [])
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason
            self.completion_tokens = delta.completion_tokens


@dataclass
class ChatResponse:
    """Every answer to a request, with the served model name and token usage."""

    model: str
    choices: list[Choice]
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.choices)

    @property
    def text(self) -> str:
        """The first answer's content (what a one-question caller wants)."""
        return self.choices[0].content if self.choices else ""
