"""From chat messages to a prompt, and from generated text back to reasoning, answer and tool calls.

Prompts are rendered by the tokenizer's own chat template with the same ``enable_thinking`` and
system-prompt rules as training, so what was trained is what is served.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from tunelab.errors import ConfigError

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"


def render_chat(tokenizer: Any, messages: list[dict], *, tools: list[dict] | None = None,
                enable_thinking: bool = True, default_system: str | None = None) -> str:
    """The prompt text for ``messages`` with the generation prompt appended.

    Raises ConfigError (``where`` = "messages") when the template rejects the conversation.
    """
    from jinja2 import TemplateError

    messages = [_template_message(m) for m in messages]
    if default_system and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": default_system})
    try:
        return tokenizer.apply_chat_template(messages, tools=tools or None, tokenize=False,
                                             add_generation_prompt=True,
                                             enable_thinking=enable_thinking)
    except TemplateError as exc:
        raise ConfigError(f"the chat template rejected the conversation: {exc}",
                          where="messages") from None


def _template_message(message: dict) -> dict:
    """OpenAI message -> template message: text content, tool-call arguments as objects."""
    out = dict(message)
    if out.get("content") is None:
        out["content"] = ""
    calls = out.get("tool_calls")
    if calls:
        out["tool_calls"] = [_parsed_arguments(call) for call in calls]
    return out


def _parsed_arguments(call: dict) -> dict:
    # Many templates `tojson` the arguments; a JSON string would be encoded twice.
    function = dict(call.get("function", call))
    if isinstance(function.get("arguments"), str):
        try:
            function["arguments"] = json.loads(function["arguments"])
        except json.JSONDecodeError:
            pass
    return {"type": "function", "function": function} if "function" in call else function


def template_features(tokenizer: Any) -> dict[str, bool]:
    """Which output formats the template defines: reasoning blocks and tool calls."""
    template = tokenizer.chat_template or ""
    if isinstance(template, dict):
        template = " ".join(template.values())
    return {"think": THINK_OPEN in template, "tools": TOOL_OPEN in template}


class OutputParser:
    """Splits streamed text into ``("reasoning", s)`` and ``("content", s)`` pieces, holding back
    anything that may be the start of a tag, and collects ``<tool_call>`` blocks for the end."""

    def __init__(self, think: bool = False, tools: bool = False, in_reasoning: bool = False):
        self.tools = tools
        self.mode = "reasoning" if in_reasoning else ("start" if think else "content")
        self.pending = ""
        self.tool_text = ""
        self.trim = in_reasoning

    def feed(self, text: str) -> list[tuple[str, str]]:
        """Pieces that are certain now."""
        self.pending += text
        out: list[tuple[str, str]] = []
        while self.pending and self._step(out):
            pass
        return [p for p in out if p[1]]

    def _step(self, out: list) -> bool:
        """Consume what can be decided; True when the mode changed and there may be more."""
        if self.trim:
            self.pending = self.pending.lstrip()
            if not self.pending:
                return False
            self.trim = False
        if self.mode == "start":
            return self._decide_start()
        if self.mode == "tool":
            self.tool_text += self.pending
            self.pending = ""
            return False
        tag = THINK_CLOSE if self.mode == "reasoning" else (TOOL_OPEN if self.tools else None)
        if tag and tag in self.pending:
            before, self.pending = self.pending.split(tag, 1)
            out.append((self.mode, before))
            self.mode, self.trim = ("content", True) if self.mode == "reasoning" else ("tool", False)
            return True
        keep = _partial_tag(self.pending, tag) if tag else 0
        out.append((self.mode, self.pending[:len(self.pending) - keep]))
        self.pending = self.pending[len(self.pending) - keep:]
        return False

    def _decide_start(self) -> bool:
        head = self.pending.lstrip()
        if head.startswith(THINK_OPEN):
            self.pending = head[len(THINK_OPEN):]
            self.mode, self.trim = "reasoning", True
            return True
        if THINK_OPEN.startswith(head):
            return False  # might still become <think>
        self.mode = "content"
        return True

    def finish(self) -> tuple[list[tuple[str, str]], list[dict]]:
        """The held-back rest, and the tool calls found (OpenAI shape)."""
        rest = [(("content" if self.mode == "start" else self.mode), self.pending)]
        self.pending = ""
        if self.mode != "tool":
            return [p for p in rest if p[1] and p[0] != "tool"], []
        calls, leftover = parse_tool_calls(TOOL_OPEN + self.tool_text + rest[0][1])
        return ([("content", leftover)] if leftover.strip() else []), calls


def _partial_tag(text: str, tag: str) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


_TOOL_BLOCK = re.compile(re.escape(TOOL_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(TOOL_CLOSE) + r"|$)",
                         re.DOTALL)


def parse_tool_calls(text: str) -> tuple[list[dict], str]:
    """OpenAI ``tool_calls`` from ``<tool_call>{"name", "arguments"}</tool_call>`` blocks; a block
    that is not valid JSON stays in the returned text, so nothing the model said is lost."""
    calls, kept = [], []
    last = 0
    for match in _TOOL_BLOCK.finditer(text):
        call = _tool_call(match.group(1))
        if call is None:
            continue
        kept.append(text[last:match.start()])
        last = match.end()
        calls.append(call)
    kept.append(text[last:])
    return calls, "".join(kept).strip()


def _tool_call(body: str) -> dict | None:
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": data["name"], "arguments": arguments}}
