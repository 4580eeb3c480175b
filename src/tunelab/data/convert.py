"""Raw rows -> :class:`Conversation` / :class:`TextSample`, with a precise reason for every reject.

Formats follow LLaMA-Factory: *alpaca* (instruction/input/output/history/system columns),
*sharegpt* (a list of ``{from, value}`` messages) and *openai* (``{role, content}`` messages,
optionally with ``tool_calls``). A row that cannot be used raises :class:`RowError`; the caller
skips and counts it.
"""

from __future__ import annotations

import difflib
import json
import re

from tunelab.data.conversation import (Conversation, LabeledSample, Message, PreferenceSample,
                                       PromptSample, Sample, TextSample)
from tunelab.data.convert_stages import to_labeled, to_preference, to_prompt
from tunelab.data.kinds import sample_kind
from tunelab.data.readers import ROW_ERROR_KEY
from tunelab.data.registry import DatasetSpec
from tunelab.errors import DataError

PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class RowError(DataError):
    """One row is unusable; ``reason`` says why, ``where`` is its ``file:row``."""

    def __init__(self, reason: str, location: str = ""):
        self.reason = reason
        super().__init__(reason, where=location or None)


def to_sample(row: dict, spec: DatasetSpec, location: str, stage: str,
              placeholders: dict | None = None) -> Sample:
    """Convert one row for ``stage``: the sample kind ``data.kinds`` names for it (pt gives a
    TextSample, sft a Conversation, rm/dpo a PreferenceSample, kto a LabeledSample, grpo/rloo a
    PromptSample)."""
    kind = sample_kind(stage)
    try:
        if ROW_ERROR_KEY in row:
            raise RowError(row[ROW_ERROR_KEY])
        _reject_media(row, spec)
        _check_ranking(spec, stage, kind)
        if kind == "text":
            sample = TextSample(_pretrain_text(row, spec), source=location)
        elif kind in _STAGE_CONVERTERS:
            sample = _STAGE_CONVERTERS[kind](row, spec, location, _conversation)
        else:
            sample = _conversation(row, spec, location)
    except RowError as exc:
        raise RowError(exc.reason, location) from None
    return fill_placeholders(sample, placeholders) if placeholders else sample


_STAGE_CONVERTERS = {"pairwise": to_preference, "unpaired": to_labeled, "prompt": to_prompt}


def _conversation(row: dict, spec: DatasetSpec, location: str) -> Conversation:
    return _from_alpaca(row, spec, location) if spec.formatting == "alpaca" else \
        _from_messages(row, spec, location)


def _check_ranking(spec: DatasetSpec, stage: str, kind: str) -> None:
    """Pairs train rm/dpo only, and those stages train pairs only (as in LLaMA-Factory)."""
    if spec.ranking and kind != "pairwise":
        raise RowError(f"ranking (chosen/rejected) rows are for stage rm or dpo, not {stage}; "
                       "use stage: dpo, or a dataset without \"ranking\": true")
    if kind == "pairwise" and not spec.ranking:
        raise RowError(f"stage {stage} trains on preference pairs, and this dataset is not one: "
                       f"set \"ranking\": true in its dataset_info.json entry (with columns "
                       f"'chosen' and 'rejected')")


def _reject_media(row: dict, spec: DatasetSpec) -> None:
    """Images/videos/audios would be dropped silently by a text-only pipeline: refuse instead."""
    for kind in ("images", "videos", "audios"):
        name = getattr(spec.columns, kind)
        if name and row.get(name):
            raise RowError(f"row has {kind} (column '{name}'); TuneLab trains text-only models - "
                           f"remove \"{kind}\" from the dataset's columns to train on the text alone")


def _columns_present(row: dict) -> str:
    return ", ".join(repr(k) for k in row) or "(none)"


def _column(row: dict, name: str | None, what: str, required: bool = True):
    if name is None or name not in row:
        if required:
            close = difflib.get_close_matches(str(name), [str(k) for k in row], n=1, cutoff=0.6)
            guess = f" (did you mean '{close[0]}'?)" if close else ""
            pretraining = " (only a 'text' column: a pre-training dataset? use stage: pt)" \
                if list(row) == ["text"] else ""
            raise RowError(f"missing column '{name}' ({what}){guess}; the row has columns "
                           f"{_columns_present(row)}{pretraining} - set \"columns\": {{\"{what}\": ...}} "
                           f"in dataset_info.json if it is named differently")
        return None
    return row[name]


def _text(value, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise RowError(f"{what} must be text, got a {type(value).__name__}")
    return str(value)


def _pretrain_text(row: dict, spec: DatasetSpec) -> str:
    if spec.formatting != "alpaca":
        messages = _column(row, spec.columns.messages, "messages")
        tag = spec.tags.content_tag
        text = "\n\n".join(_text(m.get(tag), "message content") for m in messages if isinstance(m, dict))
    else:
        # LLaMA-Factory pt registries set columns.prompt: "text"; plain .txt rows are {"text": ...}
        name = spec.columns.prompt if "prompt" in spec.given_columns or "text" not in row else "text"
        text = _text(_column(row, name, "prompt"), f"column '{name}'")
    if not text.strip():
        raise RowError("empty text")
    return text


def _from_alpaca(row: dict, spec: DatasetSpec, location: str) -> Conversation:
    cols = spec.columns
    prompt = _text(_column(row, cols.prompt, "prompt"), f"column '{cols.prompt}'")
    query = _text(_column(row, cols.query, "query", required=False), f"column '{cols.query}'")
    response = _text(_column(row, cols.response, "response"), f"column '{cols.response}'")
    user = f"{prompt}\n{query}" if prompt and query else (prompt or query)
    if not user.strip():
        raise RowError(f"empty user turn (columns '{cols.prompt}' and '{cols.query}' are both empty)")
    if not response.strip():
        raise RowError(f"empty assistant turn (column '{cols.response}')")
    messages = _alpaca_history(_column(row, cols.history, "history", required=False), cols.history)
    messages += [Message("user", user), Message("assistant", response)]
    return Conversation(messages, system=_system(row, spec), tools=_tools(row, spec), source=location)


def _alpaca_history(history, name: str | None) -> list[Message]:
    if not history:
        return []
    if not isinstance(history, list):
        raise RowError(f"column '{name}' must be a list of [user, assistant] pairs")
    messages = []
    for i, pair in enumerate(history, 1):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise RowError(f"column '{name}' item {i} must be a [user, assistant] pair, got {pair!r:.80}")
        if not str(pair[1] or "").strip():
            raise RowError(f"empty assistant turn in column '{name}' item {i}")
        messages += [Message("user", _text(pair[0], "history")), Message("assistant", _text(pair[1], "history"))]
    return messages


def _system(row: dict, spec: DatasetSpec) -> str | None:
    value = _column(row, spec.columns.system, "system", required=False)
    return _text(value, f"column '{spec.columns.system}'") or None


def _tools(row: dict, spec: DatasetSpec) -> list[dict] | None:
    value = _column(row, spec.columns.tools, "tools", required=False)
    if value in (None, "", []):
        return None
    if isinstance(value, str):
        value = _parse_json(value, f"column '{spec.columns.tools}'")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise RowError(f"column '{spec.columns.tools}' must be a list of tool definitions (JSON objects)")
    return value


def _parse_json(text: str, what: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RowError(f"{what} is not valid JSON ({exc.msg} at column {exc.colno}): {text!r:.80}") from None


def fill_placeholders(sample: Sample, values: dict) -> Sample:
    """Replace ``{{name}}`` with ``values[name]``; unknown names stay as written."""
    def fill(text: str | None) -> str | None:
        if not text:
            return text
        return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), text)

    def fill_conversation(conv: Conversation) -> None:
        conv.system = fill(conv.system)
        for message in conv.messages:
            message.content = fill(message.content)

    if isinstance(sample, TextSample):
        sample.text = fill(sample.text)
    elif isinstance(sample, Conversation):
        fill_conversation(sample)
    elif isinstance(sample, PreferenceSample):
        fill_conversation(sample.prompt)
        sample.chosen.content, sample.rejected.content = fill(sample.chosen.content), fill(sample.rejected.content)
    elif isinstance(sample, LabeledSample):
        fill_conversation(sample.conversation)
    elif isinstance(sample, PromptSample):
        fill_conversation(sample.prompt)
    return sample



# Which tag may follow which: LLaMA-Factory's user/assistant alternation, extended so that an
# assistant tool call is answered by one or more observations before the assistant speaks again.
_NEXT = {"start": ("user",), "user": ("assistant", "function"), "function": ("observation",),
         "observation": ("observation", "assistant", "function"), "assistant": ("user",)}


def _from_messages(row: dict, spec: DatasetSpec, location: str) -> Conversation:
    raw = _column(row, spec.columns.messages, "messages")
    if isinstance(raw, str):
        raw = _parse_json(raw, f"column '{spec.columns.messages}'")
    if not isinstance(raw, list) or not raw:
        raise RowError(f"column '{spec.columns.messages}' must be a non-empty list of messages")
    tags, system = spec.tags, _system(row, spec)
    kinds = {tags.user_tag: "user", tags.assistant_tag: "assistant", tags.observation_tag: "observation",
             tags.function_tag: "function", tags.system_tag: "system"}
    turns = [_turn(m, i, tags, kinds) for i, m in enumerate(raw, 1)]
    first = 1
    if turns and turns[0][0] == "system":
        system, first = turns.pop(0)[1].content or system, 2
    _check_order(turns, tags, first)
    return Conversation([m for _, m in turns], system=system, tools=_tools(row, spec), source=location)


def _turn(message, index: int, tags, kinds: dict) -> tuple[str, Message]:
    """(kind, Message) for one raw message; kind is the tag's meaning (user, function, ...)."""
    if not isinstance(message, dict):
        raise RowError(f"message {index} must be an object, got {type(message).__name__}")
    for key in (tags.role_tag, tags.content_tag):
        if key not in message and not (key == tags.content_tag and message.get("tool_calls")):
            raise RowError(f"message {index} has no '{key}' key (it has {_columns_present(message)}); "
                           "set \"tags\" (role_tag, content_tag) in dataset_info.json to match")
    role = message[tags.role_tag]
    if role not in kinds:
        allowed = ", ".join(repr(t) for t in kinds)
        raise RowError(f"message {index} has unknown role {role!r}; allowed: {allowed}")
    kind, content = kinds[role], _text(message.get(tags.content_tag), f"message {index} content")
    if kind == "function":
        return kind, Message("assistant", "", tool_calls=_parse_calls(content, index))
    if kind == "assistant" and message.get("tool_calls"):
        return "function", Message("assistant", content, tool_calls=_native_calls(message["tool_calls"], index),
                                   reasoning=_reasoning(message))
    if kind == "assistant" and not content.strip():
        raise RowError(f"message {index}: empty assistant turn")
    role_name = {"observation": "tool"}.get(kind, kind)
    return kind, Message(role_name, content, reasoning=_reasoning(message) if kind == "assistant" else None)


def _reasoning(message: dict) -> str | None:
    value = message.get("reasoning_content", message.get("reasoning"))
    return str(value) if value else None


def _parse_calls(content: str, index: int) -> list[dict]:
    calls = _parse_json(content, f"message {index} (function_call)")
    calls = calls if isinstance(calls, list) else [calls]
    for call in calls:
        if not isinstance(call, dict) or "name" not in call:
            raise RowError(f"message {index} (function_call) must be {{\"name\": ..., \"arguments\": ...}} "
                           f"or a list of them, got {content!r:.80}")
    return [{"name": c["name"], "arguments": c.get("arguments", {})} for c in calls]


def _native_calls(calls, index: int) -> list[dict]:
    """OpenAI ``tool_calls``: arguments may be a JSON string; keep them as given once checked."""
    if not isinstance(calls, list):
        raise RowError(f"message {index}: 'tool_calls' must be a list")
    out = []
    for call in calls:
        function = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(function, dict) or "name" not in function:
            raise RowError(f"message {index}: each tool call needs a function name, got {call!r:.80}")
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            arguments = _parse_json(arguments, f"message {index} tool call arguments")
        out.append({"name": function["name"], "arguments": arguments})
    return out


def _check_order(turns: list[tuple[str, Message]], tags, first: int) -> None:
    names = {"user": tags.user_tag, "assistant": tags.assistant_tag, "function": tags.function_tag,
             "observation": tags.observation_tag, "system": tags.system_tag}
    previous = "start"
    for i, (kind, _) in enumerate(turns, first):
        if kind not in _NEXT[previous]:
            expected = " or ".join(repr(names[k]) for k in _NEXT[previous])
            raise RowError(f"message {i} is {names[kind]!r} but {expected} was expected "
                           f"(after {'the start' if previous == 'start' else repr(names[previous])})")
        previous = kind
    if previous not in ("assistant", "function"):
        what = "no turns" if previous == "start" else f"a {names[previous]!r} turn"
        raise RowError(f"the conversation ends with {what}; the last turn must be "
                       f"{names['assistant']!r} (the answer that is trained)")
