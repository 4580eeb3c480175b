"""Reward functions of the user's own, named ``module.path:function`` in ``reward_funcs``.

The module is imported as Python imports it (PYTHONPATH, then the current folder). The function
is called by TRL with keyword arguments only: ``prompts``, ``completions``, ``completion_ids``,
every dataset column, ``trainer_state``, ``log_extra`` and ``log_metric``. So it must take
``**kwargs``; a parameter it names without a default is a dataset column every row must have.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from typing import Any, Callable

from tunelab.errors import ConfigError

# What TRL passes besides the dataset's columns (trl GRPOTrainer._calculate_rewards).
TRAINER_KWARGS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra",
                  "log_metric", "environments")
EXAMPLE = "def my_reward(completions, **kwargs) -> list[float]"


def _error(name: str, problem: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"reward function '{name}': {problem}", where="key 'reward_funcs'",
                       key="reward_funcs", value=name, hint=hint)


def load_custom(name: str) -> Callable:
    """The function ``name`` (``module.path:function``) names, checked to be callable by TRL.

    Raises ConfigError when the module does not import, has no such function, or the function
    cannot take TRL's keyword arguments.
    """
    module_name, _, func_name = name.partition(":")
    module = _import(name, module_name)
    func = getattr(module, func_name, None)
    if func is None:
        defined = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                   and getattr(v, "__module__", None) == module.__name__]
        close = difflib.get_close_matches(func_name, defined, n=1)
        hint = f"did you mean '{module_name}:{close[0]}'?" if close else \
            f"it defines: {', '.join(defined) or '(no functions)'}"
        raise _error(name, f"module '{module_name}' ({_file(module)}) has no '{func_name}'", hint)
    if not callable(func):
        raise _error(name, f"'{func_name}' is a {type(func).__name__}, not a function",
                     f"define it as {EXAMPLE}")
    check_signature(name, func)
    return func


def _import(name: str, module_name: str) -> Any:
    # `tunelab` installed as a command does not put the current folder on sys.path, as
    # `python -m tunelab` does; a module next to the recipe should import either way.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise _error(name, f"no module named '{module_name}'",
                         "put the folder that holds it on PYTHONPATH, or run tunelab from that "
                         "folder") from None
        raise _error(name, f"importing '{module_name}' failed: {_where(exc, module_name)}") from None
    except Exception as exc:  # the module's own code failed: say where
        raise _error(name, f"importing '{module_name}' failed: {_where(exc, module_name)}",
                     "fix the module so that `python -c 'import " + module_name + "'` works") from None


def _where(exc: BaseException, module_name: str) -> str:
    """``SyntaxError: ... (file.py, line 3)``, or the exception and the module's own line that
    raised it (not the library's line deeper down)."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError):
        return text
    spec = importlib.util.find_spec(module_name)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if spec and f.filename == spec.origin]
    return f"{text} ({frames[-1].filename}, line {frames[-1].lineno})" if frames else text


def _file(module: Any) -> str:
    return getattr(module, "__file__", None) or "built in"


def check_signature(name: str, func: Callable) -> None:
    """Raise ConfigError unless ``func`` takes TRL's keyword arguments (``**kwargs``) and has no
    argument that must be given by position."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return  # a builtin without a signature: TRL will tell at the first step
    shown = f"{getattr(func, '__name__', name)}{inspect.signature(func)}"
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        raise _error(name, f"{shown} takes no **kwargs, but TRL passes every dataset column and "
                     f"{', '.join(TRAINER_KWARGS[:4])} by keyword", f"define it as {EXAMPLE}")
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL)]
    if positional:
        raise _error(name, f"{shown} has positional-only argument(s) {', '.join(positional)}; TRL "
                     "passes every argument by keyword", f"define it as {EXAMPLE}")


def named_columns(func: Callable) -> list[str]:
    """The dataset columns ``func`` names as parameters without a default."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and p.default is p.empty and p.name not in TRAINER_KWARGS]
