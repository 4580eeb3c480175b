"""Tokenizer metadata for GGUF: a byte-level BPE tokenizer.json as llama.cpp's "gpt2" tokenizer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import ModelError

# Added tokens that end a chat turn in the common template families (llama.cpp's "eot").
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|end_of_text|>")


@dataclass
class GGUFVocab:
    """Everything llama.cpp needs to tokenize like the Hugging Face tokenizer does."""

    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    pre: str
    special_ids: dict[str, int] = field(default_factory=dict)
    add_bos: bool = False
    chat_template: str | None = None
    notes: list[str] = field(default_factory=list)


def read_vocab(folder: Path, tokenizer: Any, vocab_size: int) -> GGUFVocab:
    """The GGUF vocabulary of the tokenizer saved in ``folder``, padded to the model's vocab size."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise ModelError("GGUF export needs a fast tokenizer (tokenizer.json)", where=str(folder),
                         hint="export without export_gguf, or use a model with a tokenizer.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        raise ModelError(f"GGUF export supports byte-level BPE tokenizers; this one is "
                         f"{model.get('type')}{' with byte fallback' if model.get('byte_fallback') else ''}",
                         where=str(path), hint="convert with llama.cpp's convert_hf_to_gguf.py instead")
    tokens, types = _tokens_and_types(model["vocab"], data.get("added_tokens") or [], vocab_size)
    pre, notes = _pre_tokenizer_name(data.get("pre_tokenizer"))
    vocab = GGUFVocab(tokens=tokens, token_types=types, merges=_merges(model.get("merges") or []),
                      pre=pre, notes=notes, chat_template=_chat_template(tokenizer),
                      add_bos=bool(getattr(tokenizer, "add_bos_token", False)))
    vocab.special_ids = _special_ids(tokenizer, tokens)
    return vocab


def _tokens_and_types(vocab: dict[str, int], added: list[dict], size: int) -> tuple[list[str], list[int]]:
    from gguf import TokenType

    size = max([size, len(vocab)] + [token["id"] + 1 for token in added])
    tokens: list[str | None] = [None] * size
    types = [int(TokenType.NORMAL)] * size
    for text, index in vocab.items():
        tokens[index] = text
    for token in added:
        tokens[token["id"]] = token["content"]
        types[token["id"]] = int(TokenType.CONTROL if token.get("special") else TokenType.USER_DEFINED)
    for index, text in enumerate(tokens):
        if text is None:
            # The model's embedding is larger than the tokenizer (rounded up): unused slots.
            tokens[index] = f"[PAD{index}]"
            types[index] = int(TokenType.UNUSED)
    return tokens, types  # type: ignore[return-value]


def _merges(merges: list) -> list[str]:
    """Merges as "a b" strings (tokenizers >= 0.20 stores pairs as lists)."""
    return [m if isinstance(m, str) else " ".join(m) for m in merges]


def _pre_tokenizer_name(pre: dict | None) -> tuple[str, list[str]]:
    """llama.cpp's name for the pre-tokenizer, and a note when it is only an approximation."""
    steps = (pre or {}).get("pretokenizers", [pre] if pre else [])
    kinds = [step.get("type") for step in steps]
    if kinds and kinds[-1] == "ByteLevel" and steps[-1].get("use_regex", True):
        extra = kinds[:-1]
        if not extra:
            return "gpt-2", []
        return "gpt-2", [f"the tokenizer splits text with {', '.join(extra)} before the GPT-2 "
                         "byte-level rules; llama.cpp uses the GPT-2 rules only, so a few "
                         "tokenizations (e.g. of long numbers) may differ"]
    return "default", [f"pre-tokenizer {kinds or 'none'} has no llama.cpp equivalent; llama.cpp "
                       "will use its default rules"]


def _chat_template(tokenizer: Any) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    return template if isinstance(template, str) else None


def _special_ids(tokenizer: Any, tokens: list[str]) -> dict[str, int]:
    ids = {}
    for role in ("bos", "eos", "pad", "unk"):
        value = getattr(tokenizer, f"{role}_token_id", None)
        if value is not None:
            ids[role] = int(value)
    for text in END_OF_TURN:
        if text in tokens:
            ids["eot"] = tokens.index(text)
            break
    return ids
