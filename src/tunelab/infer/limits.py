"""What one request may ask of an engine: prompt length, answer length, answers, body size.

Recipe keys (``max_prompt_tokens``, ``max_answer_tokens``, ``max_choices``, ``max_request_bytes``;
``tunelab api`` flags of the same names) set them; 0 means "derive from the model's context".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from tunelab.config.infer import InferArgs

MIN_REQUEST_BYTES = 1 << 20
BYTES_PER_TOKEN = 16  # generous: a CJK character escaped in JSON is 6 bytes and about one token


@dataclass(frozen=True)
class Limits:
    """Resolved limits; ``None`` token limits mean the model's context is unknown (no cap)."""

    prompt_tokens: int | None
    answer_tokens: int | None
    choices: int
    request_bytes: int

    @classmethod
    def resolve(cls, args: "InferArgs", context: int | None) -> "Limits":
        """The recipe's limits, 0 replaced by what the model's ``context`` length allows."""
        for key in ("max_prompt_tokens", "max_answer_tokens", "max_request_bytes"):
            if getattr(args, key) < 0:
                raise ConfigError(f"must be 0 (automatic) or positive, got {getattr(args, key)}",
                                  where=f"key '{key}'")
        if args.max_choices < 1:
            raise ConfigError(f"must be at least 1, got {args.max_choices}", where="key 'max_choices'")
        body = args.max_request_bytes or max(MIN_REQUEST_BYTES, BYTES_PER_TOKEN * (context or 0))
        return cls(prompt_tokens=args.max_prompt_tokens or context,
                   answer_tokens=args.max_answer_tokens or context,
                   choices=args.max_choices, request_bytes=body)
