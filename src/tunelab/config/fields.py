"""Field metadata and value coercion shared by every config section.

A section is a dataclass whose fields are declared with :func:`option`. The metadata (help text,
choices, aliases) is the single source for validation, ``--help`` and the board's controls.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import types
import typing
from typing import Any

from tunelab.errors import ConfigError


def option(default: Any = None, help: str = "", *, help_zh: str = "", choices: Any = None,
           min: float | None = None, max: float | None = None, min_exclusive: bool = False,
           max_exclusive: bool = False, group: str | None = None,
           when: dict[str, tuple] | None = None, aliases: tuple[str, ...] = (),
           factory: Any = None) -> Any:
    """Declare a config field: its help (English and Chinese), allowed values, inclusive bounds
    (exclusive when ``min_exclusive`` / ``max_exclusive``), UI group, the condition under which
    it applies (``when={"finetuning_type": ("lora",)}``) and its LLaMA-Factory aliases.

    ``choices`` may be a function returning the choices, for lists owned by another package
    (read when the spec is built, not at import time).
    """
    metadata = {"help": help, "help_zh": help_zh, "choices": choices, "aliases": aliases,
                "min": min, "max": max, "min_exclusive": min_exclusive,
                "max_exclusive": max_exclusive, "group": group, "when": when}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def type_hints(section_cls: type) -> dict[str, Any]:
    """Resolved annotations of a dataclass (works with ``from __future__ import annotations``)."""
    return typing.get_type_hints(section_cls)


def _is_optional(tp: Any) -> tuple[bool, list[Any]]:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    origin = typing.get_origin(tp)
    is_union = origin in (typing.Union, types.UnionType)
    return is_union and len(args) < len(typing.get_args(tp)), (args if is_union else [tp])


def _bad(key: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"expected {expected}, got {value!r}", where=f"key '{key}'", key=key,
                       value=value, allowed=expected)


def _to_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise _bad(key, value, "true or false")


def _to_number(value: Any, key: str, expected: str) -> float:
    if isinstance(value, bool):
        raise _bad(key, value, expected)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _bad(key, value, expected) from None
    if not math.isfinite(number):
        # nan / inf parse as floats, but no setting means them: a run would only produce NaN.
        raise _bad(key, value, f"{expected} (finite)")
    return number


def _coerce_scalar(value: Any, tp: Any, key: str) -> Any:
    if tp is Any:
        return value
    if tp is bool:
        return _to_bool(value, key)
    if tp is int:
        number = _to_number(value, key, "an integer")
        if not number.is_integer():
            raise _bad(key, value, "an integer")
        return int(number)
    if tp is float:
        return _to_number(value, key, "a number")
    if tp is str:
        if isinstance(value, (dict, list)):
            raise _bad(key, value, "a string")
        return str(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value).value
    raise TypeError(f"unsupported field type {tp!r} for {key}")


def _coerce_list(value: Any, item_tp: Any, key: str) -> list:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)):
        value = [value]
    return [_coerce_scalar(item, item_tp, key) for item in value]


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML or command-line value to the field's declared type, or raise ConfigError."""
    optional, candidates = _is_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.strip() in ("null", "~", "")):
        if optional or tp is Any:
            return None
        raise ConfigError("a value is required here, got nothing", where=f"key '{key}'", key=key)
    errors = []
    # Try the most specific candidate types first so "3" becomes 3, not "3".
    order = {bool: 0, int: 1, float: 2, list: 3, dict: 4, str: 9}
    for cand in sorted(candidates, key=lambda c: order.get(typing.get_origin(c) or c, 5)):
        origin = typing.get_origin(cand)
        try:
            if origin in (list, tuple):
                item_tp = (typing.get_args(cand) or (str,))[0]
                return _coerce_list(value, item_tp, key)
            if origin is dict or cand is dict:
                if isinstance(value, dict):
                    return dict(value)
                if isinstance(value, str) and len(candidates) > 1:
                    raise ConfigError("not a mapping", where=key)
                raise _bad(key, value, "a mapping")
            return _coerce_scalar(value, cand, key)
        except (ConfigError, ValueError, TypeError) as exc:
            errors.append(exc)
    first = errors[0] if errors else None
    if isinstance(first, ConfigError):
        raise first
    raise _bad(key, value, "a value of type " + str(tp))


def suggest(key: str, known: list[str], n: int = 3) -> list[str]:
    """The closest known key names to a misspelt one."""
    return difflib.get_close_matches(key, known, n=n, cutoff=0.6)
