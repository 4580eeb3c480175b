"""Human-readable views of samples: the parsed sample and which tokens are trained.

Used by ``tunelab data preview`` and the board. Trained text is wrapped in ``[[ ]]`` so the
view works in any terminal and in logs; colour (dim prompt) is only an extra on a TTY. A sample
shows one marked text per side: one for pt/sft, ``chosen`` and ``rejected`` for a preference
pair (rm, dpo), the labelled answer for kto, and the prompt alone for ppo/grpo (whose answers
the model writes during training).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tunelab.data.conversation import (Conversation, LabeledSample, PreferenceSample, PromptSample,
                                       TextSample)
from tunelab.data.convert import RowError
from tunelab.data.encode import IGNORE_INDEX, render
from tunelab.data.encode_batch import encode_one
from tunelab.data.encode_stages import fit_lengths, split_answer

TRAIN_OPEN, TRAIN_CLOSE = "[[", "]]"
_DIM, _RESET = "\033[2m", "\033[0m"


@dataclass
class MarkedText:
    """One text the model is fed, decoded, with its trained tokens inside ``[[ ]]``;
    ``label`` names the side (None when a sample has just one)."""

    label: str | None
    marked: str
    tokens: int
    trained: int


@dataclass
class SamplePreview:
    """One sample as the model will see it."""

    conversation: str
    rendered: str | None = None
    sides: list[MarkedText] = field(default_factory=list)
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


def _side(tokenizer, label: str | None, prompt: list[int], answer: list[int], colour: bool) -> MarkedText:
    ids = prompt + answer
    labels = [IGNORE_INDEX] * len(prompt) + answer
    return MarkedText(label, mark_trained(tokenizer, ids, labels, colour) if ids else "", len(ids), len(answer))


def preview_sample(sample, tokenizer=None, options: dict | None = None,
                   colour: bool = False) -> SamplePreview:
    """The parsed sample, and with a tokenizer the texts it is trained on, trained tokens marked."""
    view = SamplePreview(sample.describe())
    if tokenizer is None:
        return view
    try:
        if isinstance(sample, PreferenceSample):
            _preview_pair(view, sample, tokenizer, options, colour)
        elif isinstance(sample, LabeledSample):
            _preview_labeled(view, sample, tokenizer, options, colour)
        elif isinstance(sample, PromptSample):
            _preview_prompt(view, sample, tokenizer, options, colour)
        else:
            _preview_supervised(view, sample, tokenizer, options, colour)
    except RowError as exc:
        view.note = f"skipped: {exc.reason}"
    return view


def _preview_supervised(view: SamplePreview, sample: Conversation | TextSample, tokenizer,
                        options: dict, colour: bool) -> None:
    if isinstance(sample, Conversation):
        view.rendered = render(tokenizer, sample.to_chat_messages(options.get("default_system")),
                               tools=sample.chat_tools(), enable_thinking=options["enable_thinking"])
    kind, value = encode_one(sample, tokenizer, options)
    if kind == "bad":
        view.note = f"skipped: {value.reason}"
    elif kind == "dropped":
        view.note = f"dropped: no answer token left within cutoff_len={options['cutoff_len']}"
    else:
        trained = sum(1 for label in value["labels"] if label != IGNORE_INDEX)
        view.sides.append(MarkedText(None, mark_trained(tokenizer, value["input_ids"], value["labels"],
                                                        colour), len(value["input_ids"]), trained))


def _preview_pair(view: SamplePreview, sample: PreferenceSample, tokenizer, options: dict,
                  colour: bool) -> None:
    """Both sides exactly as the pairwise encoder cuts them: the shared prompt, then each answer."""
    kind, row = encode_one(sample, tokenizer, options)
    if kind == "bad":
        view.note = f"skipped: {row.reason}"
        return
    if kind == "dropped":
        view.note = f"dropped: no answer token left within cutoff_len={options['cutoff_len']}"
        return
    for side in ("chosen", "rejected"):
        view.sides.append(_side(tokenizer, side, row["prompt_ids"], row[f"{side}_ids"], colour))


def _preview_labeled(view: SamplePreview, sample: LabeledSample, tokenizer, options: dict,
                     colour: bool) -> None:
    """The prompt and the tagged answer (cut to cutoff_len as pairs are)."""
    prompt, answer = split_answer(sample.conversation, tokenizer,
                                  enable_thinking=options["enable_thinking"],
                                  default_system=options["default_system"])
    kept_prompt, kept_answer = fit_lengths(len(prompt), len(answer), options["cutoff_len"])
    if not answer or kept_prompt <= 0 or kept_answer <= 0:
        view.note = f"dropped: no answer token left within cutoff_len={options['cutoff_len']}"
        return
    label = "desirable answer" if sample.desirable else "undesirable answer"
    view.sides.append(_side(tokenizer, label, prompt[len(prompt) - kept_prompt:], answer[:kept_answer],
                            colour))


def _preview_prompt(view: SamplePreview, sample: PromptSample, tokenizer, options: dict,
                    colour: bool) -> None:
    """The prompt with the assistant's turn opened: nothing is marked, the model answers."""
    messages = sample.prompt.to_chat_messages(options.get("default_system"))
    text = render(tokenizer, messages, tools=sample.prompt.chat_tools(), generation_prompt=True,
                  enable_thinking=options["enable_thinking"])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    view.sides.append(_side(tokenizer, "prompt (the model writes the answer during training)",
                            list(ids), [], colour))


def format_preview(location: str, view: SamplePreview) -> str:
    """A block of text for one previewed row."""
    lines = [f"=== {location}", "--- conversation", view.conversation]
    if view.rendered is not None:
        lines += ["--- rendered by the chat template", view.rendered]
    for side in view.sides:
        name = f"{side.label}: " if side.label else ""
        lines += [f"--- {name}tokens: {side.tokens}, trained: {side.trained} "
                  f"(trained text is inside {TRAIN_OPEN} {TRAIN_CLOSE})", side.marked]
    if view.note:
        lines.append(f"--- {view.note}")
    return "\n".join(lines)
