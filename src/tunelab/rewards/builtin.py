"""The built-in reward functions, called by TRL's GRPOTrainer with keyword arguments: the
completions, every column of the dataset (``answer`` among them), and more (``**kwargs``).

A completion is a list of messages (the assistant's turn) when prompts are conversations, as
TuneLab's are; plain text is accepted too, so the functions can be called by hand.
"""

from __future__ import annotations

import re
from typing import Any

from tunelab.rewards.answers import answers_match

_FORMAT = re.compile(r"\s*<think>(?P<reasoning>.*?)</think>(?P<answer>.*)", re.DOTALL)
_REASONING_KEYS = ("reasoning_content", "reasoning", "thinking")


def completion_text(completion: Any) -> str:
    """The text of one completion: its reasoning (as ``<think>...</think>``, when a response
    parser split it off) and its content."""
    if isinstance(completion, str):
        return completion
    parts = []
    for message in completion:
        reasoning = next((message[k] for k in _REASONING_KEYS if message.get(k)), None)
        if reasoning:
            parts.append(f"<think>{reasoning}</think>")
        parts.append(message.get("content") or "")
    return "".join(parts)


def accuracy(completions: list, answer: list, **kwargs) -> list[float | None]:
    """1.0 when the completion's final answer matches the row's ``answer``, else 0.0 (None, which
    TRL leaves out of the mean, for a row without one)."""
    return [None if reference is None else float(answers_match(completion_text(c), str(reference)))
            for c, reference in zip(completions, answer, strict=True)]


def think_format(completions: list, **kwargs) -> list[float]:
    """1.0 for ``<think>reasoning</think>`` followed by a non-empty answer, with no second
    think block; else 0.0."""
    rewards = []
    for completion in completions:
        match = _FORMAT.fullmatch(completion_text(completion))
        good = bool(match) and "<think>" not in match["reasoning"] and match["answer"].strip() != "" \
            and "think>" not in match["answer"]
        rewards.append(float(good))
    return rewards


class OverlongPenalty:
    """``length``: 0 for completions up to 3/4 of ``max_completion_length`` tokens, falling
    linearly to -1 at the limit (DAPO's soft overlong punishment, TRL's implementation), so the
    model learns to finish before it is cut off."""

    __name__ = "length"  # the name TRL logs its mean under (rewards/length/mean)

    def __init__(self, max_completion_length: int):
        from trl.rewards import get_soft_overlong_punishment

        cache = max(max_completion_length // 4, 1)
        self.max_completion_length = max_completion_length
        self._punish = get_soft_overlong_punishment(max_completion_length, cache)

    def __call__(self, completion_ids: list, **kwargs) -> list[float]:
        return [float(r) for r in self._punish(completion_ids)]
