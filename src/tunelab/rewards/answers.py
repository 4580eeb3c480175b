"""Final answers: what a completion answers, and whether that matches a reference answer.

A completion's final answer is its text after the last ``</think>`` (the reasoning is not the
answer), and within it the last ``\\boxed{...}`` when there is one. It matches the reference when
the normalised texts are equal, or, for a numeric reference, when the last number of the answer
has the same value (``17``, ``The answer is 17.`` and ``12 + 5 = 17`` all answer ``17``). With
math-verify installed, answers are also compared as mathematics: ``1/2``, ``0.5`` and
``\\frac{1}{2}`` are the same answer.
"""

from __future__ import annotations

import logging
import re
import threading
from fractions import Fraction

THINK_CLOSE = "</think>"
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_TRAILING = " \t\n.,;:!?。，；：！？"


def final_answer(text: str) -> str:
    """The answer part of a completion: what follows the last ``</think>``, else all of it."""
    return text.rsplit(THINK_CLOSE, 1)[-1].strip()


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (nested braces allowed), or None."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    open_at = text.find("{", start)
    if open_at < 0:
        return None
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[open_at + 1:i]
    return None


def normalize(text: str) -> str:
    """Lower case, single spaces, no surrounding ``$`` or trailing punctuation."""
    text = " ".join(str(text).split()).strip("$ ").lower()
    return text.rstrip(_TRAILING)


def as_number(text: str) -> Fraction | None:
    """``text`` as an exact number when all of it is one (``-3.5``, ``1,000``, ``2/3``)."""
    text = normalize(text).replace(",", "")
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def last_number(text: str) -> Fraction | None:
    """The value of the last number written in ``text``."""
    numbers = _NUMBER.findall(text)
    return as_number(numbers[-1]) if numbers else None


def plain_match(answer: str, reference: str) -> bool:
    """Whether ``answer`` (a final answer) matches ``reference`` as text, or as a number."""
    answer = last_boxed(answer) or answer
    if normalize(answer) == normalize(reference):
        return True
    expected = as_number(reference)
    return expected is not None and last_number(answer) == expected


def math_match(answer: str, reference: str) -> bool | None:
    """math-verify's verdict, or None when it is not installed or the reference is not maths."""
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    # math-verify times out with signal.alarm, which works in the main thread only.
    main = threading.current_thread() is threading.main_thread()
    if not main:
        logging.getLogger("math_verify").setLevel(logging.ERROR)
    gold = parse(reference, parsing_timeout=5 if main else None)
    if not gold:
        return None
    return bool(verify(gold, parse(answer, parsing_timeout=5 if main else None),
                       timeout_seconds=5 if main else None))


def answers_match(completion: str, reference: str) -> bool:
    """Whether the final answer of ``completion`` is ``reference`` (see the module docstring)."""
    answer = final_answer(completion)
    return plain_match(answer, reference) or bool(math_match(answer, reference))
