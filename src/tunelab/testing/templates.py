"""ChatML-style Jinja chat templates for the tiny models.

Both templates are *prefix-stable*: rendering ``messages[:k]`` (without a generation prompt) is a
string prefix of rendering ``messages``, and every turn ends with ``<|im_end|>\\n``. TuneLab's
loss masking cuts a conversation into per-turn spans by rendering growing prefixes, so nothing
may depend on a message's position other than the leading system message (e.g. no stripping of
reasoning from history turns, no "last turn only" branches).

The "think" variant adds reasoning: an assistant message's ``reasoning_content`` is rendered as
``<think>\\n...\\n</think>\\n\\n`` before its content. ``enable_thinking=False`` marks every
assistant turn that has no reasoning, and the generation prompt, with an empty think block
(``<think>\\n\\n</think>\\n\\n``, the Qwen3 convention), so the generation prompt stays a prefix of
the assistant turn that follows it in training data rendered the same way.
"""

from __future__ import annotations

# Multi-part OpenAI content (a list of {"type": "text", "text": ...}) is flattened to its text.
_CONTENT_MACRO = (
    "{%- macro render_content(content) -%}"
    "{%- if content is string -%}{{- content -}}"
    "{%- elif content is iterable and content is not mapping -%}"
    "{%- for part in content -%}{%- if part.type == 'text' -%}{{- part.text -}}{%- endif -%}{%- endfor -%}"
    "{%- endif -%}"
    "{%- endmacro -%}"
)

# No default system prompt: a conversation without one renders no system block unless tools are
# given, so the template never injects text the data did not contain.
_SYSTEM_BLOCK = (
    "{%- set has_system = messages and messages[0].role == 'system' -%}"
    "{%- if has_system or tools -%}"
    "{{- '<|im_start|>system\\n' -}}"
    "{%- if has_system -%}{{- render_content(messages[0].content) -}}{%- endif -%}"
    "{%- if tools -%}"
    "{%- if has_system -%}{{- '\\n\\n' -}}{%- endif -%}"
    "{{- '# Tools\\nYou can call the functions listed below. To call one, reply with '"
    " + '<tool_call>{\"name\": <function-name>, \"arguments\": <args-json-object>}</tool_call>.\\n' -}}"
    "{{- tools | tojson -}}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
)

# Accepts both OpenAI's {"type": "function", "function": {...}} and a bare {"name", "arguments"};
# arguments given as a JSON string are emitted verbatim so they are not double-encoded.
_TOOL_CALLS = (
    "{%- for call in message.tool_calls or [] -%}"
    "{%- set fn = call.function if call.function is defined else call -%}"
    "{%- if not loop.first or message.content -%}{{- '\\n' -}}{%- endif -%}"
    "{{- '<tool_call>{\"name\": ' + (fn.name | tojson) + ', \"arguments\": ' -}}"
    "{%- if fn.arguments is string -%}{{- fn.arguments -}}{%- else -%}{{- (fn.arguments or {}) | tojson -}}{%- endif -%}"
    "{{- '}</tool_call>' -}}"
    "{%- endfor -%}"
)

_EMPTY_THINK = "{{- '<think>\\n\\n</think>\\n\\n' -}}"
_THINKING_OFF = "enable_thinking is defined and not enable_thinking"

_REASONING = (
    "{%- set reasoning = message.reasoning_content if message.reasoning_content is string else '' -%}"
    "{%- if reasoning | trim -%}{{- '<think>\\n' + (reasoning | trim) + '\\n</think>\\n\\n' -}}"
    "{%- elif " + _THINKING_OFF + " -%}" + _EMPTY_THINK +
    "{%- endif -%}"
)


def _assistant_turn(reasoning: str) -> str:
    return ("{{- '<|im_start|>assistant\\n' -}}" + reasoning +
            "{{- render_content(message.content) -}}" + _TOOL_CALLS + "{{- '<|im_end|>\\n' -}}")


def _template(think: bool) -> str:
    reasoning = _REASONING if think else ""
    generation = "{{- '<|im_start|>assistant\\n' -}}"
    if think:
        generation += "{%- if " + _THINKING_OFF + " -%}" + _EMPTY_THINK + "{%- endif -%}"
    return (
        _CONTENT_MACRO + _SYSTEM_BLOCK +
        "{%- for message in messages -%}"
        "{%- if loop.first and message.role == 'system' -%}"  # already in the system block
        "{%- elif message.role == 'assistant' -%}" + _assistant_turn(reasoning) +
        "{%- else -%}"
        "{{- '<|im_start|>' + message.role + '\\n' -}}{{- render_content(message.content) -}}"
        "{{- '<|im_end|>\\n' -}}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}" + generation + "{%- endif -%}"
    )


CHAT_TEMPLATE = _template(think=False)
"""ChatML template: system (optional), user, assistant (with ``tool_calls``), tool roles, ``tools``."""

THINK_TEMPLATE = _template(think=True)
"""CHAT_TEMPLATE plus ``reasoning_content`` and the ``enable_thinking`` variable."""

TEMPLATES = {"chat": CHAT_TEMPLATE, "think": THINK_TEMPLATE}
