"""Request bodies of the OpenAI-compatible API (and the legacy ``POST /``), as pydantic models.

Unknown fields are ignored, as OpenAI clients send many we do not use (``user``, ``logprobs``
...). Ranges (from ``infer.params.RANGES``, the one place they are declared) are checked here so
a bad value is a 422 naming the field, never a crash later. Limits a server operator sets
(``max_choices``, ``max_answer_tokens`` ...) are checked by the engine and ``convert`` (400).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunelab.infer.params import RANGES
from tunelab.infer.request import RequestError


class _Body(BaseModel):
    # JSON's NaN / Infinity extensions are no number a sampling setting can use.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class _Request(_Body):
    """A whole request body: every string in it, however deep, must be valid Unicode."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = lone_surrogate_at(data)
        if where is not None:
            raise RequestError(f"{where or 'the body'} holds a lone UTF-16 surrogate (a \\ud800-"
                               "\\udfff escape without its pair), which is not text",
                               param=where or None, code="invalid_unicode",
                               hint="send valid UTF-8 / paired surrogates")
        return data


def lone_surrogate_at(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string (or key) in ``value`` that UTF-8 cannot encode."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        inner = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and lone_surrogate_at(key) is not None:
            return path or "the body"
        found = lone_surrogate_at(item, inner)
        if found is not None:
            return found
    return None


class ContentPart(_Body):
    type: str
    text: str | None = None


class FunctionCall(_Body):
    name: str
    arguments: str | dict = "{}"


class ToolCall(_Body):
    id: str | None = None
    type: str = "function"
    function: FunctionCall


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None


class FunctionSpec(_Body):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Body):
    type: Literal["function"] = "function"
    function: FunctionSpec


class StreamOptions(_Body):
    include_usage: bool = False


class _Sampling(_Request):
    """Fields shared by chat and text completions. ``top_k`` and ``repetition_penalty`` are
    extensions (vLLM accepts them too); unset fields fall back to the recipe's defaults."""

    model: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1)
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(None, **RANGES["max_new_tokens"])
    temperature: float | None = Field(None, **RANGES["temperature"])
    top_p: float | None = Field(None, **RANGES["top_p"])
    top_k: int | None = Field(None, **RANGES["top_k"])
    repetition_penalty: float | None = Field(None, **RANGES["repetition_penalty"])
    seed: int | None = Field(None, **RANGES["seed"])


class ChatCompletionRequest(_Sampling):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
         "max_tokens": 4},
        {"messages": [{"role": "user", "content": "Hi"}], "stream": True, "n": 2, "temperature": 0.7,
         "stream_options": {"include_usage": True}}]})

    messages: list[ChatMessage]
    max_completion_tokens: int | None = Field(None, **RANGES["max_new_tokens"])
    tools: list[Tool] | None = None
    tool_choice: Any = None
    enable_thinking: bool | None = None
    chat_template_kwargs: dict[str, Any] | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    echo: bool = False


class HistoryMessage(_Body):
    role: Literal["system", "user", "assistant"]
    content: str


class LegacyChatRequest(_Request):
    """The body of ``POST /`` in the widely copied ChatGLM-style ``api.py``: ``history`` is
    ``[[question, answer], ...]`` or chat messages ``[{"role", "content"}, ...]``."""

    prompt: str
    model: str | None = None
    history: list[list[str]] | list[HistoryMessage] = Field(default_factory=list)
    max_length: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, **RANGES["top_p"])
    temperature: float | None = Field(None, **RANGES["temperature"])


class ScoreMessage(_Body):
    role: Literal["system", "user", "assistant"]
    content: str


class ScorePair(_Body):
    """A prompt (a user turn, or the chat messages before the answer) and the assistant's
    response, rendered with the reward model's template."""

    prompt: str | list[ScoreMessage]
    response: str


class ScoreRequest(_Request):
    """``POST /v1/score``: rewards for whole texts and/or prompt/response pairs, in order (at
    most ``max_choices`` inputs, each within ``max_prompt_tokens``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"input": ["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"]},
        {"input": [{"prompt": "Hi", "response": "Hello! How can I help?"},
                   {"prompt": "Hi", "response": "What."}]},
        {"input": [{"prompt": [{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "Hi"}], "response": "Hello!"}]}]})

    model: str | None = None
    input: str | list[str | ScorePair]

    @model_validator(mode="before")
    @classmethod
    def _input_items(cls, data: Any) -> Any:
        """Name the item and field that is wrong (a union's own error names neither well)."""
        items = data.get("input") if isinstance(data, dict) else None
        for index, item in enumerate(items if isinstance(items, list) else []):
            if isinstance(item, str):
                continue
            if not isinstance(item, dict):
                raise RequestError(f"each input is a text or a {{prompt, response}} object, got "
                                   f"{type(item).__name__}", param=f"input.{index}")
            for field in ("prompt", "response"):
                kinds = (str, list) if field == "prompt" else str  # a prompt may be messages
                if not isinstance(item.get(field), kinds):
                    problem = "is missing" if field not in item else "must be text"
                    raise RequestError(f"'{field}' {problem}: a pair is {{\"prompt\": text, "
                                       "\"response\": text}", param=f"input.{index}.{field}")
            _check_prompt_messages(item["prompt"], f"input.{index}.prompt")
        return data


def _check_prompt_messages(prompt: Any, where: str) -> None:
    """A prompt given as messages: each a ``{"role", "content"}`` object with text content."""
    for index, message in enumerate(prompt if isinstance(prompt, list) else []):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise RequestError("each prompt message is {\"role\": \"system\"|\"user\"|\"assistant\", "
                               "\"content\": text}", param=f"{where}.{index}")
        if not isinstance(message.get("content"), str):
            raise RequestError("a message's content must be text", param=f"{where}.{index}.content")
