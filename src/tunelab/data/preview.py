"""Human-readable views of samples: the parsed sample and which tokens are trained.

Used by ``tunelab data preview`` and the board. Trained text is wrapped in ``[[ ]]`` so the
view works in any terminal and in logs; colour (dim prompt) is only an extra on a TTY. A sample
shows one marked text per side, cut by the stage's own encoder: one for pt/sft, ``chosen`` and
``rejected`` for a preference pair (rm, dpo), the tagged answer for kto, and the prompt alone
for grpo (whose answers the model writes during training).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tunelab.data.conversation import Conversation, LabeledSample, PreferenceSample, PromptSample
from tunelab.data.encode import IGNORE_INDEX, render
from tunelab.data.encode_batch import encode_one
from tunelab.data.encode_stages import prompt_text

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
    """One sample as the model will see it: ``sides`` holds each text it is fed."""

    conversation: str
    rendered: str | None = None
    sides: list[MarkedText] = field(default_factory=list)
    note: str | None = None

    @property
    def marked(self) -> str | None:
        """The marked text of a one-sided sample (None for a pair)."""
        return self.sides[0].marked if len(self.sides) == 1 else None

    @property
    def tokens(self) -> int:
        """Tokens fed, over every side."""
        return sum(side.tokens for side in self.sides)

    @property
    def trained(self) -> int:
        """Tokens trained, over every side."""
        return sum(side.trained for side in self.sides)


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
    """A prompt (not trained) followed by an answer (trained)."""
    ids, labels = prompt + answer, [IGNORE_INDEX] * len(prompt) + answer
    return MarkedText(label, mark_trained(tokenizer, ids, labels, colour) if ids else "", len(ids),
                      len(answer))


def preview_sample(sample, tokenizer=None, options: dict | None = None,
                   colour: bool = False) -> SamplePreview:
    """The parsed sample, and with a tokenizer the texts it is fed, trained tokens marked."""
    view = SamplePreview(sample.describe())
    if tokenizer is None:
        return view
    if isinstance(sample, PromptSample):
        return _preview_prompt(sample, tokenizer, options, view, colour)
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
        view.sides = _sides(sample, value, tokenizer, colour)
    return view


def _sides(sample, row: dict, tokenizer, colour: bool) -> list[MarkedText]:
    """The encoder's row as marked texts: a pair's two sides (the shared prompt, then each
    answer), a kto row's prompt and tagged answer, or an sft/pt row's ids and labels."""
    if isinstance(sample, PreferenceSample):
        return [_side(tokenizer, side, row["prompt_ids"], row[f"{side}_ids"], colour)
                for side in ("chosen", "rejected")]
    if isinstance(sample, LabeledSample):
        label = "desirable answer" if sample.desirable else "undesirable answer"
        return [_side(tokenizer, label, row["prompt_ids"], row["completion_ids"], colour)]
    trained = sum(1 for label in row["labels"] if label != IGNORE_INDEX)
    return [MarkedText(None, mark_trained(tokenizer, row["input_ids"], row["labels"], colour),
                       len(row["input_ids"]), trained)]


def _preview_prompt(sample: PromptSample, tokenizer, options: dict, view: SamplePreview,
                    colour: bool) -> SamplePreview:
    """A prompt (grpo): the text the model answers from; nothing of it is trained."""
    kind, value = encode_one(sample, tokenizer, options)
    if kind == "bad":
        view.note = f"skipped: {value.reason}"
        return view
    view.rendered = prompt_text(sample, tokenizer, options)
    ids = tokenizer(view.rendered, add_special_tokens=False)["input_ids"]
    view.sides = [_side(tokenizer, "prompt", list(ids), [], colour)]
    view.note = (f"prompt: {len(ids)} tokens; the completions are sampled during training and "
                 "scored by the reward functions")
    return view


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
