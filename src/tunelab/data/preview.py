"""Human-readable views of samples: the parsed conversation and which tokens are trained.

Used by ``tunelab data preview`` and the board. Trained text is wrapped in ``[[ ]]`` so the
view works in any terminal and in logs; colour (dim prompt) is only an extra on a TTY.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.data.conversation import Conversation, LabeledSample, PromptSample, TextSample
from tunelab.data.encode import IGNORE_INDEX, render
from tunelab.data.encode_batch import encode_one
from tunelab.data.encode_stages import prompt_text

TRAIN_OPEN, TRAIN_CLOSE = "[[", "]]"
_DIM, _RESET = "\033[2m", "\033[0m"


@dataclass
class SamplePreview:
    """One sample as the model will see it."""

    conversation: str
    rendered: str | None = None
    marked: str | None = None
    tokens: int = 0
    trained: int = 0
    note: str | None = None


def mark_trained(tokenizer, ids: list[int], labels: list[int], colour: bool = False) -> str:
    """The decoded ids with every run of trained tokens wrapped in ``[[ ]]``."""
    pieces, start = [], 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or (labels[i] == IGNORE_INDEX) != (labels[start] == IGNORE_INDEX):
            text = tokenizer.decode(ids[start:i])
            if labels[start] != IGNORE_INDEX:
                pieces.append(f"{TRAIN_OPEN}{text}{TRAIN_CLOSE}")
            else:
                pieces.append(f"{_DIM}{text}{_RESET}" if colour else text)
            start = i
    return "".join(pieces)


def preview_sample(sample: Conversation | TextSample | LabeledSample | PromptSample, tokenizer=None,
                   options: dict | None = None, colour: bool = False) -> SamplePreview:
    """The parsed sample, and with a tokenizer its rendered text and trained tokens."""
    view = SamplePreview(sample.describe())
    if tokenizer is None:
        return view
    if isinstance(sample, PromptSample):
        return _preview_prompt(sample, tokenizer, options, view)
    conv = sample.conversation if isinstance(sample, LabeledSample) else sample
    if isinstance(conv, Conversation):
        view.rendered = render(tokenizer, conv.to_chat_messages(options.get("default_system")),
                               tools=conv.chat_tools(), enable_thinking=options["enable_thinking"])
    kind, value = encode_one(sample, tokenizer, options)
    if kind == "bad":
        view.note = f"skipped: {value.reason}"
    elif kind == "dropped":
        view.note = f"dropped: no answer token left within cutoff_len={options['cutoff_len']}"
    else:
        ids, labels = _ids_and_labels(value)
        view.tokens = len(ids)
        view.trained = sum(1 for label in labels if label != IGNORE_INDEX)
        view.marked = mark_trained(tokenizer, ids, labels, colour)
    return view


def _preview_prompt(sample: PromptSample, tokenizer, options: dict, view: SamplePreview) -> SamplePreview:
    """A prompt (grpo): the text the model answers from; nothing of it is trained."""
    kind, value = encode_one(sample, tokenizer, options)
    if kind == "bad":
        view.note = f"skipped: {value.reason}"
        return view
    view.rendered = prompt_text(sample, tokenizer, options)
    view.tokens = len(tokenizer(view.rendered, add_special_tokens=False)["input_ids"])
    view.note = (f"prompt: {view.tokens} tokens; the completions are sampled during training and "
                 "scored by the reward functions")
    return view


def _ids_and_labels(row: dict) -> tuple[list[int], list[int]]:
    """The fed ids and their labels; a kto row is its prompt, then the tagged answer it scores."""
    if "completion_ids" in row:
        prompt = row["prompt_ids"]
        return prompt + row["completion_ids"], [IGNORE_INDEX] * len(prompt) + row["completion_ids"]
    return row["input_ids"], row["labels"]


def format_preview(location: str, view: SamplePreview) -> str:
    """A block of text for one previewed row."""
    lines = [f"=== {location}", "--- conversation", view.conversation]
    if view.rendered is not None:
        lines += ["--- rendered by the chat template", view.rendered]
    if view.marked is not None:
        lines += [f"--- tokens: {view.tokens}, trained: {view.trained} "
                  f"(trained text is inside {TRAIN_OPEN} {TRAIN_CLOSE})", view.marked]
    if view.note:
        lines.append(f"--- {view.note}")
    return "\n".join(lines)
