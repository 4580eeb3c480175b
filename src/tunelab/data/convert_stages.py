"""Rows -> samples for the post-training stages: preference pairs (rm, dpo), tagged answers
(kto) and prompts (grpo, rloo), in LLaMA-Factory's alpaca and sharegpt layouts.

Each reuses the sft conversion (the same column, tag and turn-order checks and messages), so a
pair's prompt is validated exactly as an sft conversation is.
"""

from __future__ import annotations

from tunelab.data.conversation import (Conversation, LabeledSample, Message, PreferenceSample,
                                       PromptSample)
from tunelab.data.registry import DatasetSpec

_TRUE = ("true", "1", "yes", "desirable", "good")
_FALSE = ("false", "0", "no", "undesirable", "bad")


def to_preference(row: dict, spec: DatasetSpec, location: str, convert) -> PreferenceSample:
    """A chosen/rejected pair; ``convert(row, spec, location)`` is the sft converter.

    Raises RowError for a missing or empty side, or a pair whose two answers are the same.
    """
    from tunelab.data.convert import RowError, _column

    cols = spec.columns
    names = {"chosen": cols.chosen or "chosen", "rejected": cols.rejected or "rejected"}
    answers = {side: _answer_text(_column(row, name, side), name, spec) for side, name in names.items()}
    for side, text in answers.items():
        if not text.strip():
            raise RowError(f"empty {side} answer (column '{names[side]}')")
    if answers["chosen"].strip() == answers["rejected"].strip():
        raise RowError(f"the chosen and rejected answers are the same (columns '{names['chosen']}' "
                       f"and '{names['rejected']}'): the pair teaches nothing - fix or drop the row")
    prompt = _prompt_of(convert(_with_answer(row, spec, answers["chosen"]), spec, location))
    return PreferenceSample(prompt, Message("assistant", answers["chosen"]),
                            Message("assistant", answers["rejected"]), source=location)


def to_labeled(row: dict, spec: DatasetSpec, location: str, convert) -> LabeledSample:
    """An sft conversation plus its ``kto_tag`` (true: desirable answer, false: undesirable)."""
    from tunelab.data.convert import RowError, _column

    name = spec.columns.kto_tag or "kto_tag"
    tag = _column(row, name, "kto_tag")
    if isinstance(tag, str) and tag.strip().lower() in _TRUE + _FALSE:
        tag = tag.strip().lower() in _TRUE
    if not isinstance(tag, bool) and tag not in (0, 1):
        raise RowError(f"column '{name}' (kto_tag) must be true (a desirable answer) or false "
                       f"(an undesirable one), got {'null' if tag is None else repr(tag)[:40]}")
    return LabeledSample(convert(row, spec, location), bool(tag), source=location)


def to_prompt(row: dict, spec: DatasetSpec, location: str, convert) -> PromptSample:
    """The prompt of a row; a trailing assistant answer (or the response column) becomes
    ``answer``, and an ``answer`` column wins over both. Every column is kept in ``extras``."""
    from tunelab.data.convert import RowError

    placeholder = "(answer written during training)"
    answer = None
    if spec.formatting == "alpaca":
        response = row.get(spec.columns.response) if spec.columns.response else None
        answer = str(response) if response not in (None, "") else None
        conv = convert({**row, spec.columns.response or "output": placeholder}, spec, location)
    else:
        conv = _prompt_messages(row, spec, location, convert, placeholder)
        answer = conv.messages[-1].content if conv.messages[-1].content != placeholder else None
    if "answer" in row and row["answer"] not in (None, ""):
        answer = str(row["answer"])
    prompt = _prompt_of(conv)
    if not prompt.messages or prompt.messages[-1].role != "user":
        raise RowError("the prompt must end with a user turn")
    return PromptSample(prompt, answer, extras=dict(row), source=location)


def check_columns(sample: PromptSample, required: dict[str, str]) -> None:
    """Raise RowError when the prompt row lacks a column a reward function reads
    (``required``: column -> why it is needed)."""
    from tunelab.data.convert import RowError

    for column, why in required.items():
        value = sample.answer if column == "answer" else sample.extras.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            where = ("an 'answer' column, or the response column of alpaca rows / a final "
                     "assistant turn") if column == "answer" else f"a '{column}' column"
            raise RowError(f"no {column}: {why}; give the row {where}")


def _prompt_messages(row: dict, spec: DatasetSpec, location: str, convert, placeholder: str) -> Conversation:
    """sharegpt/openai rows may end with the user turn (a pure prompt) or with an answer."""
    from tunelab.data.convert import RowError

    messages = row.get(spec.columns.messages)
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict) \
            and messages[-1].get(spec.tags.role_tag) == spec.tags.user_tag:
        answer = {spec.tags.role_tag: spec.tags.assistant_tag, spec.tags.content_tag: placeholder}
        row = {**row, spec.columns.messages: messages + [answer]}
    conv = convert(row, spec, location)
    if conv.messages[-1].role != "assistant":
        raise RowError("the prompt must end with a user turn")
    return conv


def _answer_text(value, name: str, spec: DatasetSpec) -> str:
    """A chosen/rejected value: text, or (sharegpt) one assistant message or a list ending in one."""
    from tunelab.data.convert import RowError

    if isinstance(value, list) and value:
        value = value[-1]
    if isinstance(value, dict):
        tags = spec.tags
        if tags.content_tag not in value:
            raise RowError(f"column '{name}' must be a message with a '{tags.content_tag}' key, "
                           f"got keys {', '.join(map(repr, value)) or '(none)'}")
        role = value.get(tags.role_tag, tags.assistant_tag)
        if role != tags.assistant_tag:
            raise RowError(f"column '{name}' is a {role!r} message; it must be the assistant's "
                           f"({tags.assistant_tag!r})")
        value = value[tags.content_tag]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RowError(f"column '{name}' must be text or an assistant message, got a "
                       f"{type(value).__name__}")
    return value


def _with_answer(row: dict, spec: DatasetSpec, answer: str) -> dict:
    """The row as an sft row whose answer is ``answer`` (so the sft checks validate the prompt)."""
    if spec.formatting == "alpaca":
        return {**row, spec.columns.response or "output": answer}
    tags = spec.tags
    message = {tags.role_tag: tags.assistant_tag, tags.content_tag: answer}
    messages = row.get(spec.columns.messages)
    if not isinstance(messages, list):  # the sft converter names what is wrong with it
        return row
    return {**row, spec.columns.messages: messages + [message]}


def _prompt_of(conv: Conversation) -> Conversation:
    """The conversation without its final assistant answer."""
    return Conversation(conv.messages[:-1], system=conv.system, tools=conv.tools, source=conv.source)
