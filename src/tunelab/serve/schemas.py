"""Request bodies of the OpenAI-compatible API (and the legacy ``POST /``), as pydantic models.

Unknown fields are ignored, as OpenAI clients send many we do not use (``user``, ``logprobs``
...). Ranges are checked here so a bad value is a 422 naming the field, never a crash later;
the sampling bounds are the recipe spec's (``tunelab.config.spec.field_bounds``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tunelab.config.spec import field_bounds


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


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


class _Sampling(_Body):
    """Fields shared by chat and text completions. ``top_k`` and ``repetition_penalty`` are
    extensions (vLLM accepts them too); unset fields fall back to the recipe's defaults."""

    model: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=16)
    stop: str | list[str] | None = None
    max_tokens: int | None = Field(None, **field_bounds("max_new_tokens"))
    temperature: float | None = Field(None, **field_bounds("temperature"))
    top_p: float | None = Field(None, **field_bounds("top_p"))
    top_k: int | None = Field(None, **field_bounds("top_k"))
    repetition_penalty: float | None = Field(None, **field_bounds("repetition_penalty"))
    seed: int | None = None


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage]
    max_completion_tokens: int | None = Field(None, **field_bounds("max_new_tokens"))
    tools: list[Tool] | None = None
    tool_choice: Any = None
    enable_thinking: bool | None = None
    chat_template_kwargs: dict[str, Any] | None = None


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    echo: bool = False


class LegacyChatRequest(_Body):
    """The body of ``POST /`` in the widely copied ChatGLM-style ``api.py``."""

    prompt: str
    history: list[list[str]] = Field(default_factory=list)
    max_length: int | None = Field(None, **field_bounds("max_new_tokens"))
    top_p: float | None = Field(None, **field_bounds("top_p"))
    temperature: float | None = Field(None, **field_bounds("temperature"))
