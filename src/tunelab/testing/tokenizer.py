"""A byte-level BPE tokenizer trained offline on TuneLab's own demo datasets.

Byte-level means every string (English, Chinese, emoji) round-trips without an unknown token,
which is what the tests need; the vocabulary is tiny so the models stay tiny.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from tunelab.errors import ModelError

CONTROL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
"""Special tokens: skipped by ``decode(skip_special_tokens=True)``."""

MARKUP_TOKENS = ("<think>", "</think>", "<tool_call>", "</tool_call>")
"""Atomic but *not* special: they survive ``skip_special_tokens`` so reasoning and tool calls
can still be parsed from decoded text (the convention Qwen3 uses)."""

SPECIAL_TOKENS = CONTROL_TOKENS + MARKUP_TOKENS
"""All added tokens, in id order (``<|endoftext|>`` is id 0)."""

DEMO_FILES = ("identity.json", "alpaca_en_demo.json", "alpaca_zh_demo.json",
              "sharegpt_demo.json", "openai_demo.json", "pt_demo.jsonl")
"""Packaged demo files (``tunelab/resources/data``) the tokenizer learns from. A fixed list, so
datasets added there later do not silently change the tokenizer (and the cache key)."""

VOCAB_SIZE = 1024

# Digits are split one by one so that arithmetic in the demo data tokenises uniformly.
_DIGIT_PATTERN = r"\p{N}"


def demo_files() -> list[Path]:
    """Paths of the packaged demo files, in the fixed order used for training and hashing."""
    from tunelab.resources import demo_data_dir

    folder = demo_data_dir()
    missing = [name for name in DEMO_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelError(
            f"the demo datasets needed to train the tiny tokenizer are missing: {', '.join(missing)}",
            where=str(folder), hint="reinstall TuneLab with its package data (tunelab/resources/data)")
    return [folder / name for name in DEMO_FILES]


def _strings(value) -> list[str]:
    """Every string inside a parsed JSON value, in document order."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def corpus_texts() -> list[str]:
    """The training text: all strings of the demo files (tool schemas and calls included)."""
    texts: list[str] = []
    for path in demo_files():
        raw = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            texts += [s for line in raw.splitlines() if line.strip() for s in _strings(json.loads(line))]
        else:
            texts += _strings(json.loads(raw))
    return texts


@lru_cache(maxsize=4)
def train_tokenizer_json(vocab_size: int = VOCAB_SIZE) -> str:
    """Train the BPE on the demo corpus; returns the ``tokenizer.json`` text (deterministic)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_DIGIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus_texts(), trainer=trainer)
    return _unmark_markup_tokens(tok.to_str())


def _unmark_markup_tokens(tokenizer_json: str) -> str:
    # The trainer registers every added token as special; markup tokens must stay visible.
    data = json.loads(tokenizer_json)
    for entry in data["added_tokens"]:
        if entry["content"] in MARKUP_TOKENS:
            entry["special"] = False
    return json.dumps(data, ensure_ascii=False)


def make_tokenizer(variant: str = "chat", vocab_size: int = VOCAB_SIZE):
    """A ``PreTrainedTokenizerFast`` with the chat template of ``variant`` ("chat" or "think").

    eos is ``<|im_end|>`` (end of an assistant turn), pad is ``<|endoftext|>``, there is no bos;
    pretraining text should end with ``<|endoftext|>``.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from tunelab.testing.templates import TEMPLATES

    if variant not in TEMPLATES:
        raise ModelError(f"unknown tiny-model variant {variant!r}", where="variant",
                         hint=f"use one of: {', '.join(TEMPLATES)}")
    backend = Tokenizer.from_str(train_tokenizer_json(vocab_size))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        bos_token=None, unk_token=None, model_max_length=2048, clean_up_tokenization_spaces=False)
    tokenizer.chat_template = TEMPLATES[variant]
    return tokenizer
