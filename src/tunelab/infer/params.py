"""Per-request sampling settings: recipe defaults, overridden field by field by a request."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tunelab.config.spec import check_value

# Fields whose bounds the recipe spec declares under the same key.
_CHECKED = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty")

if TYPE_CHECKING:
    from tunelab.config.infer import InferArgs


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
        The bounds are the recipe spec's (``tunelab.config.infer``)."""
        for name in _CHECKED:
            check_value(name, getattr(self, name), where=f"'{name}'")
        return self
