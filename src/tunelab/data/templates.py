"""Choosing the chat template a run trains (and later serves) with.

``template: null`` keeps the tokenizer's own ``chat_template`` (what is trained is what the model
ships with); a name installs one of TuneLab's prefix-stable Jinja templates on the tokenizer, so
saving the tokenizer with the run carries the template to chat, export and serve.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from tunelab.data.template_sources import SOURCES
from tunelab.errors import DataError

TEMPLATE_NAMES = tuple(SOURCES)

# End-of-turn markers beyond the tokenizer's eos: generation must stop on them.
_STOPS: dict[str, list[str]] = {
    "chatml": ["<|im_end|>"], "qwen": ["<|im_end|>"], "qwen3": ["<|im_end|>"],
    "llama3": ["<|eot_id|>"], "gemma": ["<end_of_turn>"], "phi": ["<|end|>"],
    "glm4": ["<|user|>", "<|observation|>"],
}
_THINKING = {"qwen3"}
# Markers that reveal the end-of-turn convention of a tokenizer's own template.
_KNOWN_MARKERS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>")


@dataclass
class TemplateInfo:
    """What the rest of TuneLab needs to know about the template in use."""

    name: str
    stop_strings: list[str] = field(default_factory=list)
    supports_thinking: bool = False


def template_source(name: str) -> str:
    """The Jinja source of a named template (DataError with did-you-mean for unknown names)."""
    if name not in SOURCES:
        close = difflib.get_close_matches(name, TEMPLATE_NAMES, n=3, cutoff=0.5)
        guess = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise DataError(f"unknown template {name!r}{guess}", where="key 'template'",
                        hint=f"use one of: {', '.join(TEMPLATE_NAMES)}, or leave it unset to keep "
                        "the tokenizer's own template")
    return SOURCES[name]


def apply_template(tokenizer, name: str | None) -> TemplateInfo:
    """Install template ``name`` on ``tokenizer`` (None keeps its own) and describe it.

    Also gives the tokenizer a pad token (its eos) when it has none, since batches need one.
    """
    if name is None:
        if not getattr(tokenizer, "chat_template", None):
            raise DataError("the tokenizer has no chat template of its own", where="key 'template'",
                            hint="name one, e.g. template: chatml (or qwen3, llama3, mistral, gemma, "
                            f"...): {', '.join(TEMPLATE_NAMES)}")
        info = _own_template_info(tokenizer.chat_template)
    else:
        tokenizer.chat_template = template_source(name)
        info = TemplateInfo(name, list(_STOPS.get(name, [])), name in _THINKING)
    eos = getattr(tokenizer, "eos_token", None)
    if eos and eos not in info.stop_strings:
        info.stop_strings.append(eos)
    if getattr(tokenizer, "pad_token", None) is None and eos:
        tokenizer.pad_token = eos
    return info


def _own_template_info(source: str) -> TemplateInfo:
    stops = [marker for marker in _KNOWN_MARKERS if marker in source]
    thinking = "enable_thinking" in source or "reasoning_content" in source
    return TemplateInfo("tokenizer", stops, thinking)


def stop_token_ids(tokenizer, info: TemplateInfo) -> list[int]:
    """Ids of the stop strings that are single tokens (for ``generation_config.eos_token_id``)."""
    ids = []
    for text in info.stop_strings:
        encoded = tokenizer.encode(text, add_special_tokens=False)
        if len(encoded) == 1 and encoded[0] not in ids:
            ids.append(encoded[0])
    return ids
