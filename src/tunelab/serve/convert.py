"""Translate between OpenAI's wire format and the chat engine's requests and answers."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tunelab.infer.engine import ChatEngine
from tunelab.infer.request import ChatDelta, ChatRequest, ChatResponse, RequestError
from tunelab.serve.schemas import ChatCompletionRequest, ChatMessage, CompletionRequest


def sampling(engine: ChatEngine, body: Any, max_tokens: int | None,
             max_tokens_field: str = "max_tokens") -> Any:
    """The recipe's defaults, overridden by whatever the request set; RequestError for a
    ``max_tokens`` over the server's limit (a recipe default is only capped, never refused)."""
    limit = engine.limits.answer_tokens
    if max_tokens is not None and limit is not None and max_tokens > limit:
        raise RequestError(f"must be at most {limit} (max_answer_tokens), got {max_tokens}",
                           param=max_tokens_field, code="limit_exceeded")
    return engine.defaults.updated(max_new_tokens=max_tokens, temperature=body.temperature,
                                   top_p=body.top_p, top_k=body.top_k,
                                   repetition_penalty=body.repetition_penalty, seed=body.seed,
                                   stop=body.stop, do_sample=_sample_flag(body.temperature))


def _sample_flag(temperature: float | None) -> bool | None:
    # An explicit temperature > 0 means "sample" even when the recipe says do_sample: false.
    if temperature is None:
        return None
    return temperature > 0


def chat_request(engine: ChatEngine, body: ChatCompletionRequest) -> ChatRequest:
    """An engine request from a chat-completions body; RequestError for a bad conversation."""
    messages = [_message(m, i) for i, m in enumerate(body.messages)]
    check_role_order(messages)
    thinking = body.enable_thinking
    if thinking is None and body.chat_template_kwargs:
        thinking = body.chat_template_kwargs.get("enable_thinking")
    tools = [t.model_dump(exclude_none=True) for t in body.tools] if body.tools else None
    if body.tool_choice == "none":
        tools = None
    field = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
    max_tokens = body.max_completion_tokens or body.max_tokens
    return ChatRequest(messages=messages, model=body.model,
                       params=sampling(engine, body, max_tokens, field),
                       tools=tools, n=body.n, enable_thinking=thinking)


def _message(message: ChatMessage, index: int) -> dict[str, Any]:
    content = message.content
    if isinstance(content, list):
        if any(part.type != "text" for part in content):
            raise RequestError("only text content parts are supported",
                               param=f"messages.{index}.content", code="unsupported_content")
        content = "".join(part.text or "" for part in content)
    role = "system" if message.role == "developer" else message.role
    out: dict[str, Any] = {"role": role, "content": content or ""}
    if message.tool_calls:
        out["tool_calls"] = [call.model_dump(exclude_none=True) for call in message.tool_calls]
    for key in ("name", "tool_call_id", "reasoning_content"):
        if getattr(message, key) is not None:
            out[key] = getattr(message, key)
    return out


def check_role_order(messages: list[dict[str, Any]]) -> None:
    """System messages first, then a conversation that starts with the user, never two
    assistant turns in a row, tool results only after a tool call, ending with user or tool."""
    if not messages:
        raise RequestError("messages must not be empty", param="messages", code="empty_messages")
    start = 0
    while start < len(messages) and messages[start]["role"] == "system":
        start += 1
    turns = messages[start:]
    problem = _order_problem(turns)
    if problem:
        index, why = problem
        raise RequestError(f"bad role order at messages[{start + index}]: {why}",
                           param=f"messages.{start + index}.role", code="invalid_role_order")


def _order_problem(turns: list[dict[str, Any]]) -> tuple[int, str] | None:
    if not turns:
        return 0, "a user message is needed after the system prompt"
    if turns[0]["role"] != "user":
        return 0, f"the conversation must start with a user message, not {turns[0]['role']}"
    previous = None
    for i, message in enumerate(turns):
        role = message["role"]
        if role == "system":
            return i, "system messages must come before the conversation"
        if role == "assistant" and previous == "assistant":
            return i, "two assistant messages in a row"
        if role == "tool" and previous not in ("assistant", "tool"):
            return i, "a tool message must follow an assistant message that called a tool"
        if role == "user" and previous == "user":
            return i, "two user messages in a row"
        previous = role
    if previous == "assistant":
        return len(turns) - 1, "the last message must be from the user or a tool"
    return None


def completion_request(engine: ChatEngine, body: CompletionRequest, prompt: str) -> ChatRequest:
    return ChatRequest(prompt=prompt, model=body.model, n=body.n,
                       params=sampling(engine, body, body.max_tokens))


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def chat_completion(response: ChatResponse, completion_id: str) -> dict[str, Any]:
    """The ``chat.completion`` object."""
    choices = []
    for choice in response.choices:
        message: dict[str, Any] = {"role": "assistant", "content": choice.content}
        if choice.reasoning:
            message["reasoning_content"] = choice.reasoning
        if choice.tool_calls:
            message["tool_calls"] = choice.tool_calls
            message["content"] = choice.content or None
        choices.append({"index": choice.index, "message": message, "logprobs": None,
                        "finish_reason": choice.finish_reason})
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()),
            "model": response.model, "choices": choices,
            "usage": usage(response.prompt_tokens, response.completion_tokens)}


def chat_chunk(completion_id: str, model: str, delta: ChatDelta | None, *, index: int = 0,
               role: bool = False) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``role=True`` makes the opening chunk of a choice."""
    body: dict[str, Any] = {"role": "assistant", "content": ""} if role else {}
    finish = None
    if delta is not None:
        index, finish = delta.index, delta.finish_reason
        if delta.content:
            body["content"] = delta.content
        if delta.reasoning:
            body["reasoning_content"] = delta.reasoning
        if delta.tool_calls:
            body["tool_calls"] = [{"index": i, **call} for i, call in enumerate(delta.tool_calls)]
    return {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "choices": [{"index": index, "delta": body, "logprobs": None,
                                         "finish_reason": finish}]}


def text_completion(responses: list[ChatResponse], completion_id: str, echo: list[str]) -> dict[str, Any]:
    """The ``text_completion`` object for one or more prompts (choices numbered across them)."""
    choices, prompt_tokens, completion_tokens = [], 0, 0
    for response, prefix in zip(responses, echo):
        prompt_tokens += response.prompt_tokens
        completion_tokens += response.completion_tokens
        for choice in response.choices:
            choices.append({"index": len(choices), "text": prefix + choice.content, "logprobs": None,
                            "finish_reason": choice.finish_reason})
    return {"id": completion_id, "object": "text_completion", "created": int(time.time()),
            "model": responses[0].model, "choices": choices,
            "usage": usage(prompt_tokens, completion_tokens)}


def text_chunk(completion_id: str, model: str, index: int, text: str,
               finish: str | None) -> dict[str, Any]:
    return {"id": completion_id, "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": [{"index": index, "text": text, "logprobs": None,
                                         "finish_reason": finish}]}
