"""Choosing the chat template a run trains (and later serves) with.

``template: null`` keeps the tokenizer's own ``chat_template`` (what is trained is what the model
ships with); a name installs one of TuneLab's prefix-stable Jinja templates on the tokenizer, so
saving the tokenizer with the run carries the template to chat, export and serve.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from tunelab.data.template_sources import SOURCES, build_source
from tunelab.errors import DataError

OWN_TEMPLATE_NAMES = tuple(SOURCES)  # the templates TuneLab writes itself
TOKENIZER = "tokenizer"  # stands for the model's own chat template

# LLaMA-Factory's text-model template names -> (TuneLab template or TOKENIZER, default system
# prompt LLaMA-Factory gives it). Where LLaMA-Factory's layout is that of one of our templates the
# tokens are the same; where none of ours has it, the model's own template (the one the model
# was trained with) is used. Names we share (chatml, qwen, qwen3, default, alpaca, empty, llama3,
# mistral, gemma, glm4, deepseek, phi) are ours and not listed; the first six render exactly as
# LLaMA-Factory's (tests/test_llamafactory_compat.py).
LLAMAFACTORY_TEMPLATES: dict[str, tuple[str, str | None]] = {
    "qwen3_nothink": ("chatml", None), "qwen3_5_nothink": ("chatml", None),
    "qwen2_vl": ("chatml", "You are a helpful assistant."), "yi": ("chatml", None),
    "qwen3_5": ("qwen3", None), "qwen3_6": ("qwen3", None),
    "gemma2": ("gemma", None), "gemma3": ("gemma", None), "gemma3n": ("gemma", None),
    "phi4_mini": ("phi", None), "phi_small": ("phi", None),
    "deepseek3": ("deepseek", None), "deepseekr1": ("deepseek", None),
    "glm4_moe": ("glm4", None),
}
# Names whose layout none of ours reproduces: the model's own template is used.
for _name in ("llama2", "llama2_zh", "llama4", "mistral_small", "ministral", "ministral3", "chatglm3",
              "deepseekcoder", "phi4", "baichuan", "baichuan2", "intern2", "intern_s1",
              "cohere", "falcon", "falcon_h1", "vicuna", "zephyr", "openchat", "openchat-3.6", "solar",
              "starchat", "smollm", "smollm2", "olmo", "granite3", "granite4", "exaone", "hunyuan",
              "hunyuan_small", "index", "xuanyuan", "yuan", "breeze", "aeva", "bailing", "bailing_v2",
              "cpm4", "dbrx", "ernie", "ernie_nothink", "fewshot", "gpt_oss", "lfm2", "mimo", "mimo_v2",
              "minimax1", "minimax2", "moonlight", "opencoder", "sailor", "seed_coder", "seed_oss",
              "telechat2", "chatml_de", "glmz1", "glm4_7", "youtu", "hy3", "gemma4", "gemma4n"):
    LLAMAFACTORY_TEMPLATES[_name] = (TOKENIZER, None)

# Every name `template:` accepts (the config's allowed values): ours, then LLaMA-Factory's.
TEMPLATE_NAMES = OWN_TEMPLATE_NAMES + tuple(n for n in LLAMAFACTORY_TEMPLATES if n not in SOURCES)

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
    note: str | None = None  # how a LLaMA-Factory template name was mapped, to tell the user


def template_source(name: str, default_system: str | None = None) -> str:
    """The Jinja source of a named template (DataError with did-you-mean for unknown names)."""
    if name not in SOURCES:
        close = difflib.get_close_matches(name, TEMPLATE_NAMES, n=3, cutoff=0.5)
        guess = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise DataError(f"unknown template {name!r}{guess}", where="key 'template'",
                        hint=f"use one of: {', '.join(OWN_TEMPLATE_NAMES)}, a LLaMA-Factory text "
                        "template name, or leave it unset to keep the tokenizer's own template")
    return build_source(name, default_system)


def apply_template(tokenizer, name: str | None, default_system: str | None = None) -> TemplateInfo:
    """Install template ``name`` on ``tokenizer`` (None keeps its own) and describe it.

    A LLaMA-Factory name is mapped (``LLAMAFACTORY_TEMPLATES``) and the mapping is given in
    ``TemplateInfo.note``. ``default_system`` replaces a named template's default system prompt
    (``""``: none). Also gives the tokenizer a pad token (its eos) when it has none.
    """
    note = None
    if name in LLAMAFACTORY_TEMPLATES:
        name, note, default_system = _map_llamafactory(name, default_system)
    if name is None:
        info = _own_template(tokenizer, note)
    else:
        tokenizer.chat_template = template_source(name, default_system)
        info = TemplateInfo(name, list(_STOPS.get(name, [])), name in _THINKING, note)
    eos = getattr(tokenizer, "eos_token", None)
    if eos and eos not in info.stop_strings:
        info.stop_strings.append(eos)
    if getattr(tokenizer, "pad_token", None) is None and eos:
        tokenizer.pad_token = eos
    return info


def _map_llamafactory(name: str, default_system: str | None) -> tuple[str | None, str, str | None]:
    target, lf_system = LLAMAFACTORY_TEMPLATES[name]
    if target == TOKENIZER:
        return None, (f"template '{name}' (a LLaMA-Factory name): using the tokenizer's own chat "
                      "template, which is the layout that model was trained with"), default_system
    note = f"template '{name}' (a LLaMA-Factory name) renders as TuneLab's '{target}' template"
    return target, note, default_system if default_system is not None else lf_system


def _own_template(tokenizer, note: str | None) -> TemplateInfo:
    if not getattr(tokenizer, "chat_template", None):
        raise DataError("the tokenizer has no chat template of its own", where="key 'template'",
                        hint="name one, e.g. template: chatml (or qwen3, llama3, mistral, gemma, "
                        f"...): {', '.join(OWN_TEMPLATE_NAMES)}")
    info = _own_template_info(tokenizer.chat_template)
    info.note = note
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
