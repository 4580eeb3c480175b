"""The recipe spec: one :class:`KeySpec` per key a user may set, built from the ``option()``
declarations of every section and of the exposed Hugging Face training keys.

Validation, ``--help``, the command flags of export/chat/api, the API's request bounds and the
board's controls all read this, so a key's type, default, range and choices live in one place.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from typing import Any

from tunelab.config.data import DataArgs
from tunelab.config.export import ExportArgs
from tunelab.config.fields import type_hints
from tunelab.config.infer import InferArgs
from tunelab.config.method import MethodArgs
from tunelab.config.model import ModelArgs
from tunelab.config.output import OutputArgs
from tunelab.config.preference import PreferenceArgs
from tunelab.config.rl import RLArgs
from tunelab.config.training import TrainingArgs

# name -> section dataclass; each is an attribute of Config. Every key of every section is
# accepted in every recipe, as in LLaMA-Factory.
SECTIONS: dict[str, type] = {
    "model": ModelArgs,
    "data": DataArgs,
    "method": MethodArgs,
    "preference": PreferenceArgs,
    "rl": RLArgs,
    "output": OutputArgs,
    "infer": InferArgs,
    "export": ExportArgs,
}
# The declared Hugging Face keys: their values go to ``cfg.training``.
TRAINING_SECTION = ("training", TrainingArgs)

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", dict: "dict"}
# What a value of each spec type may be once typed (a Config built in code is checked too).
_PY_TYPES = {"bool": (bool,), "int": (int,), "float": (int, float), "list[str]": (list,),
             "dict": (dict,)}


@dataclass(frozen=True)
class KeySpec:
    """Everything known about one recipe key (see docs: the board draws its controls from it)."""

    key: str
    section: str
    group: str
    type: str
    default: Any
    help: str
    help_zh: str
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    when: dict[str, tuple] | None = None
    aliases: tuple[str, ...] = ()
    optional: bool = False

    def __hash__(self) -> int:  # `when` is a dict and `default` may be a list: hash the name
        return hash((self.section, self.key))

    def applies(self, values: dict) -> bool:
        """Whether the key matters given the other keys' values (missing ones: their default)."""
        for other, allowed in (self.when or {}).items():
            value = values[other] if other in values else spec_for(other).default
            if value not in allowed:
                return False
        return True

    def range_text(self) -> str | None:
        """The bounds in words, e.g. ">= 1", "in [0, 1)", "> 0"; None when unbounded."""
        low, high = self.min, self.max
        if low is None and high is None:
            return None
        if high is None:
            return f"{'>' if self.min_exclusive else '>='} {_num(low)}"
        if low is None:
            return f"{'<' if self.max_exclusive else '<='} {_num(high)}"
        left, right = "(" if self.min_exclusive else "[", ")" if self.max_exclusive else "]"
        return f"in {left}{_num(low)}, {_num(high)}{right}"

    def allowed_text(self) -> str:
        """What values are allowed, in words (used by error messages and help)."""
        if self.choices:
            return "one of: " + ", ".join(str(c) for c in self.choices)
        kind = {"int": "an integer", "float": "a number", "bool": "true or false",
                "list[str]": "a list (or comma-separated string)", "dict": "a mapping"}
        text = kind.get(self.type, "a string")
        rng = self.range_text()
        return f"{text} {rng}" if rng else text

    def violation(self, value: Any) -> str | None:
        """Why ``value`` (already of the right type) is not allowed, or None when it is."""
        if value is None:
            return None if self.optional else "a value is required"
        expected = _PY_TYPES.get(self.type)  # "str" keys also take numbers or mappings (sizes, paths)
        if expected and (not isinstance(value, expected) or
                         (self.type != "bool" and isinstance(value, bool))):
            return f"{value!r} has the wrong type"
        if self.choices is not None:
            items = value if isinstance(value, list) else [value]
            bad = [item for item in items if item not in self.choices]
            return f"{bad[0]!r} is not allowed" if bad else None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        if self.min is not None and (value < self.min or (self.min_exclusive and value == self.min)):
            return f"{value!r} is out of range"
        if self.max is not None and (value > self.max or (self.max_exclusive and value == self.max)):
            return f"{value!r} is out of range"
        return None


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _type_name(tp: Any) -> tuple[str, bool]:
    args = typing.get_args(tp)
    candidates = [a for a in args if a is not type(None)] if args and typing.get_origin(tp) is not list else [tp]
    optional = len(candidates) < len(args)
    names = []
    for cand in candidates:
        origin = typing.get_origin(cand)
        names.append("list[str]" if origin in (list, tuple) else _TYPE_NAMES.get(origin or cand, "str"))
    # A key that also takes a string (a size "5GB", a path) is edited as a string.
    name = "str" if "str" in names else names[0]
    return name, optional


def _resolve_choices(choices: Any) -> tuple | None:
    if callable(choices):
        choices = choices()
    return tuple(choices) if choices is not None else None


def _field_spec(section: str, cls: type, f: dataclasses.Field, hints: dict) -> KeySpec:
    meta = f.metadata
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    type_name, optional = _type_name(hints[f.name])
    return KeySpec(
        key=f.name, section=section, group=meta.get("group") or section, type=type_name,
        default=default, help=meta.get("help", ""), help_zh=meta.get("help_zh", ""),
        choices=_resolve_choices(meta.get("choices")), min=meta.get("min"), max=meta.get("max"),
        min_exclusive=meta.get("min_exclusive", False),
        max_exclusive=meta.get("max_exclusive", False), when=meta.get("when"),
        aliases=tuple(meta.get("aliases", ())), optional=optional)


@functools.lru_cache(maxsize=1)
def _all_specs() -> tuple[KeySpec, ...]:
    specs = []
    for section, cls in [*SECTIONS.items(), TRAINING_SECTION]:
        hints = type_hints(cls)
        specs.extend(_field_spec(section, cls, f, hints) for f in dataclasses.fields(cls))
    return tuple(specs)


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, KeySpec]:
    index: dict[str, KeySpec] = {}
    for spec in _all_specs():
        for name in (spec.key, *spec.aliases):
            index.setdefault(name, spec)
    return index


def describe_keys() -> list[KeySpec]:
    """Every key a user may set (TuneLab's and the exposed Hugging Face training keys), in
    declaration order: the one source for validation, ``--help``, the API bounds and the board."""
    return list(_all_specs())


def spec_for(key: str) -> KeySpec:
    """The spec of a key or one of its aliases; KeyError for a key that is not declared."""
    return _index()[key]


def is_declared(key: str) -> bool:
    """Whether ``key`` (or an alias) has a declaration."""
    return key in _index()


def field_bounds(key: str) -> dict[str, float]:
    """The key's range as pydantic ``Field`` keywords (ge/gt/le/lt), for request schemas."""
    spec = spec_for(key)
    bounds: dict[str, float] = {}
    if spec.min is not None:
        bounds["gt" if spec.min_exclusive else "ge"] = spec.min
    if spec.max is not None:
        bounds["lt" if spec.max_exclusive else "le"] = spec.max
    return bounds


def check_value(key: str, value: Any, where: str | None = None) -> None:
    """Raise ConfigError when ``value`` breaks ``key``'s choices or range (for code outside a
    recipe that takes the same setting, e.g. per-request sampling parameters)."""
    from tunelab.errors import ConfigError

    spec = spec_for(key)
    why = spec.violation(value)
    if why:
        raise ConfigError(f"{why}; allowed: {spec.allowed_text()}", where=where or f"key '{key}'",
                          key=key, value=value, allowed=spec.allowed_text())
