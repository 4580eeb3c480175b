"""The one in-memory shape every dataset format is converted to.

Readers and converters produce :class:`Conversation` (sft), :class:`TextSample` (pt),
:class:`PreferenceSample` (rm, dpo), :class:`LabeledSample` (kto) or :class:`PromptSample` (grpo,
rloo); templates and encoders only ever see these, never a raw row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

ROLES = ("system", "user", "assistant", "tool")


@dataclass
class Message:
    """One turn. ``tool_calls`` items are ``{"name": str, "arguments": dict | str}``."""

    role: str
    content: str
    tool_calls: list[dict] | None = None
    reasoning: str | None = None

    def to_chat_dict(self) -> dict:
        """The dict ``tokenizer.apply_chat_template`` expects (OpenAI style tool calls)."""
        out: dict = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [_openai_tool_call(call) for call in self.tool_calls]
        if self.reasoning is not None:
            out["reasoning_content"] = self.reasoning
        return out


def _openai_tool_call(call: dict) -> dict:
    if "function" in call:  # already OpenAI style
        return {"type": "function", **call} if "type" not in call else dict(call)
    return {"type": "function", "function": {"name": call.get("name", ""),
                                             "arguments": call.get("arguments", {})}}


@dataclass
class Conversation:
    """A chat sample. ``source`` is ``"file:row"`` so later errors can point at the row."""

    messages: list[Message]
    system: str | None = None
    tools: list[dict] | None = None
    source: str = ""

    def to_chat_messages(self, default_system: str | None = None) -> list[dict]:
        """Messages for ``apply_chat_template``: the system prompt first (own, else default)."""
        system = self.system if self.system else default_system
        out = [{"role": "system", "content": system}] if system else []
        return out + [m.to_chat_dict() for m in self.messages]

    def chat_tools(self) -> list[dict] | None:
        """Tools in the OpenAI ``{"type": "function", "function": {...}}`` form templates expect."""
        if not self.tools:
            return None
        return [t if "function" in t else {"type": "function", "function": t} for t in self.tools]

    def describe(self) -> str:
        """A plain-text rendering for previews: one ``[role]`` block per turn."""
        lines = [f"[system] {self.system}"] if self.system else []
        if self.tools:
            lines.append(f"[tools] {json.dumps(self.tools, ensure_ascii=False)}")
        for m in self.messages:
            if m.reasoning:
                lines.append(f"[{m.role} reasoning] {m.reasoning}")
            if m.content or not m.tool_calls:
                lines.append(f"[{m.role}] {m.content}")
            for call in m.tool_calls or []:
                lines.append(f"[{m.role} tool call] {json.dumps(call, ensure_ascii=False)}")
        return "\n".join(lines)


@dataclass
class TextSample:
    """A pre-training sample: raw text, trained on every token."""

    text: str
    source: str = ""

    def describe(self) -> str:
        """A plain-text rendering for previews."""
        return f"[text] {self.text}"


@dataclass
class PreferenceSample:
    """A prompt (a conversation whose last turn is the user's) with a preferred (``chosen``) and a
    dispreferred (``rejected``) assistant answer."""

    prompt: Conversation
    chosen: Message
    rejected: Message
    source: str = ""

    def describe(self) -> str:
        """A plain-text rendering for previews: the prompt, then both answers."""
        return (f"{self.prompt.describe()}\n[chosen] {self.chosen.content}\n"
                f"[rejected] {self.rejected.content}")


@dataclass
class LabeledSample:
    """A conversation ending with an assistant answer marked desirable or not (KTO's ``kto_tag``)."""

    conversation: Conversation
    desirable: bool
    source: str = ""

    def describe(self) -> str:
        """A plain-text rendering for previews, with the label."""
        label = "desirable" if self.desirable else "undesirable"
        return f"{self.conversation.describe()}\n[label] {label}"


@dataclass
class PromptSample:
    """A prompt for online stages (grpo, rloo): the model writes the answer during training.

    ``answer`` is the row's reference answer when it has one (the response column, or an
    ``answer`` column); ``extras`` holds every other column of the row, for reward functions.
    """

    prompt: Conversation
    answer: str | None = None
    extras: dict = field(default_factory=dict)
    source: str = ""

    def describe(self) -> str:
        """A plain-text rendering for previews."""
        answer = f"\n[reference answer] {self.answer}" if self.answer is not None else ""
        return f"{self.prompt.describe()}{answer}"


Sample = Conversation | TextSample | PreferenceSample | LabeledSample | PromptSample

