"""Which shape of sample each training stage reads (the data side of the stage registry).

Data knows stages only as data formats, as LLaMA-Factory's dataset processors do: ``text``
(pt), ``supervised`` (sft), ``pairwise`` (rm, dpo: chosen/rejected pairs), ``unpaired`` (kto:
one answer with a desirable/undesirable tag) and ``prompt`` (grpo, rloo: the model answers
during training).
"""

from __future__ import annotations

SAMPLE_KINDS: dict[str, str] = {
    "pt": "text",
    "sft": "supervised",
    "rm": "pairwise",
    "dpo": "pairwise",
    "kto": "unpaired",
    "grpo": "prompt",
    "rloo": "prompt",
}

# What a dataset of each kind looks like, for error messages.
KIND_NEEDS: dict[str, str] = {
    "text": "raw text (a 'text' column, or columns.prompt)",
    "supervised": "conversations that end with an assistant answer",
    "pairwise": "\"ranking\": true with a prompt and 'chosen'/'rejected' answers",
    "unpaired": "conversations that end with an assistant answer plus a 'kto_tag' column (true/false)",
    "prompt": "prompts (alpaca instruction/input, or messages ending with a user turn)",
}


def sample_kind(stage: str) -> str:
    """The sample kind ``stage`` trains on (unknown stages read conversations, as sft)."""
    return SAMPLE_KINDS.get(stage, "supervised")
