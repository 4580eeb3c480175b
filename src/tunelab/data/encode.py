"""Samples -> token ids and labels.

Supervised samples are rendered with the tokenizer's chat template (the same call chat and serve
use) and tokenised once, so the ids are exactly ``apply_chat_template(tokenize=True)``'s. Which
tokens are trained is decided on the *text*: each assistant turn's character span is found by
rendering prefixes of the conversation, and every token that overlaps a span is labelled.
"""

from __future__ import annotations

from tunelab.data.conversation import Conversation, TextSample
from tunelab.data.convert import RowError
from tunelab.errors import DataError

IGNORE_INDEX = -100


def render(tokenizer, messages: list[dict], *, tools=None, generation_prompt: bool = False,
           enable_thinking: bool = True) -> str:
    """The chat template's text for ``messages`` (``enable_thinking`` is passed to the template)."""
    return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                         add_generation_prompt=generation_prompt,
                                         enable_thinking=enable_thinking)


def assistant_spans(tokenizer, messages: list[dict], full: str, *, tools=None,
                    enable_thinking: bool = True, last_only: bool = False) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the assistant turns in ``full``, end-of-turn included."""
    indices = [i for i, m in enumerate(messages) if m["role"] == "assistant" and i > 0]
    if last_only:
        indices = indices[-1:]
    return [_span(tokenizer, messages, i, full, tools, enable_thinking) for i in indices]


def _span(tokenizer, messages: list[dict], i: int, full: str, tools, enable_thinking: bool) -> tuple[int, int]:
    """Start: the render up to the generation prompt; end: the render including message ``i``.

    Raises RowError when the template rewrites earlier turns once later ones follow (a prefix
    render is not a prefix of the full text): such a template cannot be masked turn by turn.
    """
    start = render(tokenizer, messages[:i], tools=tools, generation_prompt=True, enable_thinking=enable_thinking)
    end = render(tokenizer, messages[:i + 1], tools=tools, enable_thinking=enable_thinking)
    if not (full.startswith(start) and full.startswith(end)) or len(end) < len(start):
        raise RowError(f"the chat template renders message {i + 1} differently once later turns "
                       "follow (it is not prefix-stable), so its assistant tokens cannot be found; "
                       "set mask_history: true (train the last turn only) or template: <a TuneLab "
                       "template such as qwen3 or chatml>")
    return len(start), len(end)


def label_tokens(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[bool]:
    """Which tokens overlap a span. Overlap (not containment) keeps a token such as ``" Hi"``
    whose leading space belongs to the prompt text but which the model must still produce."""
    flags = []
    for tok_start, tok_end in offsets:
        end = max(tok_end, tok_start + 1)  # zero-width tokens still sit at a position
        flags.append(any(tok_start < e and end > s for s, e in spans))
    return flags


def answer_tokens(conv: Conversation, tokenizer, *, enable_thinking: bool = True,
                  default_system: str | None = None, last_only: bool = False) -> tuple[list[int], list[bool]]:
    """The ids of one render of ``conv`` and, per id, whether it belongs to an assistant turn
    (the last one only with ``last_only``)."""
    _require_fast(tokenizer)
    messages, tools = conv.to_chat_messages(default_system), conv.chat_tools()
    full = render(tokenizer, messages, tools=tools, enable_thinking=enable_thinking)
    spans = assistant_spans(tokenizer, messages, full, tools=tools, enable_thinking=enable_thinking,
                            last_only=last_only)
    encoded = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    return list(encoded["input_ids"]), label_tokens(encoded["offset_mapping"], spans)


def encode_supervised(conv: Conversation, tokenizer, *, cutoff_len: int, train_on_prompt: bool = False,
                      mask_history: bool = False, enable_thinking: bool = True,
                      default_system: str | None = None) -> dict | None:
    """``{"input_ids", "labels"}`` of a conversation, or None when truncation to ``cutoff_len``
    leaves no trained token (the caller counts it as dropped)."""
    ids, answer = answer_tokens(conv, tokenizer, enable_thinking=enable_thinking,
                                default_system=default_system, last_only=mask_history)
    trained = [True] * len(ids) if train_on_prompt else answer
    labels = [tok if keep else IGNORE_INDEX for tok, keep in zip(ids, trained)]
    ids, labels = ids[:cutoff_len], labels[:cutoff_len]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return {"input_ids": ids, "labels": labels}


def encode_pretrain(sample: TextSample, tokenizer) -> dict:
    """``{"input_ids", "labels"}`` of raw text followed by eos (bos first if the tokenizer adds one)."""
    if tokenizer.eos_token_id is None:
        raise DataError("the tokenizer has no eos token, so pre-training samples cannot be separated",
                        where="tokenizer", hint="use a tokenizer with an eos_token")
    ids = tokenizer(sample.text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if getattr(tokenizer, "add_bos_token", False) and tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id] + ids
    return {"input_ids": ids, "labels": list(ids)}


def _require_fast(tokenizer) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise DataError("a fast (Rust) tokenizer is needed to map chat-template text to tokens",
                        where="tokenizer", hint="load the model folder's tokenizer.json "
                        "(AutoTokenizer uses it by default)")
