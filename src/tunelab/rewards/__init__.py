"""Reward functions for the online stages (grpo, rloo): the built-in ones and the user's own.

``reward_funcs`` names them: ``accuracy`` (the final answer against the row's ``answer``),
``format`` (``<think>...</think>`` then an answer), ``length`` (a penalty for completions that
run into ``max_completion_length``) and ``module.path:function`` for a function of your own.
This package imports neither torch nor TRL at import time, so config checks can use it.
"""

from __future__ import annotations

import difflib
import re
from typing import Callable

from tunelab.errors import ConfigError

BUILTIN_REWARDS: dict[str, str] = {
    "accuracy": "1 when the completion's final answer matches the row's answer column, else 0 "
                "(math-aware with math-verify installed)",
    "format": "1 for <think>reasoning</think> followed by an answer, else 0",
    "length": "0 up to 3/4 of max_completion_length tokens, falling to -1 at the limit",
}
# The dataset column each built-in reads, and why (a row without it is a row error).
BUILTIN_COLUMNS = {"accuracy": {"answer": "the accuracy reward compares each completion's final "
                                          "answer with it"}}
_CUSTOM = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a reward function's name (None when it can): checked without
    importing anything, so a recipe's typos show before any work starts."""
    if name in BUILTIN_REWARDS or _CUSTOM.fullmatch(name):
        return None
    close = difflib.get_close_matches(name, list(BUILTIN_REWARDS), n=1)
    if close:
        return f"unknown reward function '{name}' (did you mean '{close[0]}'?)"
    if "." in name and ":" not in name:
        module, _, func = name.rpartition(".")
        return f"'{name}' names no built-in reward; for a function of yours write '{module}:{func}'"
    return f"unknown reward function '{name}'"


def allowed_text() -> str:
    return f"{', '.join(BUILTIN_REWARDS)}, or module.path:function (your own)"


def load_rewards(names: list[str], max_completion_length: int) -> list[Callable]:
    """The callables TRL's GRPOTrainer is given for ``names``, in order.

    Raises ConfigError for an unknown name, a module that does not import, a missing function,
    or a function that cannot take TRL's keyword arguments.
    """
    if not names:
        raise ConfigError("stage grpo needs at least one reward function", where="key 'reward_funcs'",
                          key="reward_funcs", allowed=allowed_text(),
                          hint="e.g. reward_funcs: accuracy,format")
    return [_load(name, max_completion_length) for name in names]


def _load(name: str, max_completion_length: int) -> Callable:
    problem = name_problem(name)
    if problem:
        raise ConfigError(problem, where="key 'reward_funcs'", key="reward_funcs", value=name,
                          allowed=allowed_text())
    from tunelab.rewards import builtin
    from tunelab.rewards.custom import load_custom

    if name == "accuracy":
        return builtin.accuracy
    if name == "format":
        return _named(builtin.think_format, "format")
    if name == "length":
        return builtin.OverlongPenalty(max_completion_length)
    return load_custom(name)


def _named(func: Callable, name: str) -> Callable:
    """``func`` under ``name``, the name TRL logs its mean under (``rewards/<name>/mean``)."""
    def reward(*args, **kwargs):
        return func(*args, **kwargs)

    reward.__name__ = reward.__qualname__ = name
    reward.__doc__ = func.__doc__
    return reward


def required_columns(names: list[str]) -> dict[str, str]:
    """Dataset column -> why it is needed, for the reward functions ``names`` (a user's function
    needs every column it names as a parameter without a default)."""
    from tunelab.rewards.custom import load_custom, named_columns

    needed: dict[str, str] = {}
    for name in names or []:
        if name in BUILTIN_COLUMNS:
            needed.update(BUILTIN_COLUMNS[name])
        elif name not in BUILTIN_REWARDS and name_problem(name) is None:
            for column in named_columns(load_custom(name)):
                needed.setdefault(column, f"reward function {name} takes it as an argument")
    return needed
