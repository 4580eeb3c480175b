"""Per-request sampling settings: recipe defaults, overridden field by field by a request."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tunelab.config.spec import check_value, field_bounds
from tunelab.errors import ConfigError

# Each sampling setting's allowed range, as pydantic Field bounds, read from the recipe spec (the
# one declaration, tunelab.config.infer): SamplingParams.checked() enforces it for recipes and
# the engine, and the API's request schemas (serve/schemas.py) are built from it.
_SPEC_KEYS = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty")
# OpenAI's seed is a signed 64-bit integer; row i of a request samples with seed + i.
_SEED_MIN, _SEED_MAX = -(2 ** 63), 2 ** 63 - 1
RANGES: dict[str, dict[str, float]] = {key: field_bounds(key) for key in _SPEC_KEYS}
RANGES["seed"] = {"ge": _SEED_MIN, "le": _SEED_MAX}

if TYPE_CHECKING:
    from tunelab.config.infer import InferArgs

# The one declaration of each sampling setting's allowed range, as pydantic Field bounds:
# SamplingParams.checked() enforces it for recipes and the engine, and the API's request schemas
# (serve/schemas.py) are built from it, so a request and a recipe can never disagree.
RANGES: dict[str, dict[str, float]] = {
    "max_new_tokens": {"ge": 1},
    "temperature": {"ge": 0.0, "le": 2.0},
    "top_p": {"gt": 0.0, "le": 1.0},
    "top_k": {"ge": 0},
    "repetition_penalty": {"gt": 0.0},
    # OpenAI's seed is a signed 64-bit integer; row i of a request samples with seed + i.
    "seed": {"ge": -(2 ** 63), "le": 2 ** 63 - 1},
}


def range_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for setting ``name`` (None when it is in range)."""
    bounds = RANGES.get(name, {})
    checks = {"ge": (lambda v, b: v >= b, ">="), "gt": (lambda v, b: v > b, ">"),
              "le": (lambda v, b: v <= b, "<=")}
    for kind, bound in bounds.items():
        ok, sign = checks[kind]
        if not ok(value, bound):
            allowed = " and ".join(f"{checks[k][1]} {b}" for k, b in bounds.items())
            return f"must be {allowed}, got {value!r}"
    return None


@dataclass(frozen=True)
class SamplingParams:
    """How one answer is generated. ``temperature == 0`` or ``do_sample=False`` means greedy."""

    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    do_sample: bool = True
    stop: tuple[str, ...] = field(default_factory=tuple)
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return not self.do_sample or self.temperature <= 0.0

    @classmethod
    def from_infer_args(cls, args: "InferArgs") -> "SamplingParams":
        """The recipe's defaults (``max_new_tokens``, ``temperature``, ... in the infer section)."""
        return cls(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                   top_p=args.top_p, top_k=args.top_k, repetition_penalty=args.repetition_penalty,
                   do_sample=args.do_sample).checked()

    def updated(self, **changes: Any) -> "SamplingParams":
        """A copy with the given fields replaced; ``None`` values keep the current setting."""
        given = {k: v for k, v in changes.items() if v is not None}
        if isinstance(given.get("stop"), str):
            given["stop"] = (given["stop"],)
        if "stop" in given:
            given["stop"] = tuple(s for s in given["stop"] if s)
        return replace(self, **given).checked()

    def checked(self) -> "SamplingParams":
        """Raise ConfigError naming the first field out of range; return self otherwise.
        The bounds are the recipe spec's (``tunelab.config.infer``), plus the seed's."""
        for name in _SPEC_KEYS:
            check_value(name, getattr(self, name), where=f"'{name}'")
        if self.seed is not None and not _SEED_MIN <= self.seed <= _SEED_MAX:
            raise ConfigError(f"must be a signed 64-bit integer, got {self.seed!r}", where="'seed'")
        return self
