"""Templates, label masks and packing, on the tiny tokenizers and the tiny Llama model."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer
from transformers.utils.chat_template_utils import render_jinja_template

from tunelab.data.collate import PackedCollator, PaddingCollator, pack_rows
from tunelab.data.conversation import Conversation, Message, TextSample
from tunelab.data.encode import IGNORE_INDEX, encode_pretrain, encode_supervised
from tunelab.data.template_sources import SOURCES
from tunelab.data.templates import OWN_TEMPLATE_NAMES, apply_template
from tunelab.errors import DataError

CONV = Conversation([Message("user", "Hi there"), Message("assistant", "Hello! How can I help?"),
                     Message("user", "Add 2+2"), Message("assistant", "4", reasoning="easy sum")],
                    system="Be brief.")
TOOL_CONV = Conversation([
    Message("user", "Weather in Oslo?"),
    Message("assistant", "", tool_calls=[{"name": "weather", "arguments": {"city": "Oslo"}}]),
    Message("tool", "rain"), Message("tool", "5C"), Message("assistant", "Rain, 5C.")],
    tools=[{"name": "weather", "description": "forecast", "parameters": {"type": "object"}}])


@pytest.fixture
def chat_tok(tiny_chat_path):
    return AutoTokenizer.from_pretrained(tiny_chat_path)


def trained_text(tok, row) -> str:
    return tok.decode([i for i, label in zip(row["input_ids"], row["labels"]) if label != IGNORE_INDEX])


def reference_ids(tok, conv, **kwargs) -> list[int]:
    out = tok.apply_chat_template(conv.to_chat_messages(), tools=conv.chat_tools(), tokenize=True, **kwargs)
    return list(out["input_ids"])  # transformers 5 returns a BatchEncoding by default


@pytest.mark.parametrize("template", [None, "chatml", "qwen3", "llama3", "mistral", "gemma"])
@pytest.mark.parametrize("conv", [CONV, TOOL_CONV], ids=["chat", "tools"])
def test_ids_equal_apply_chat_template(chat_tok, template, conv):
    apply_template(chat_tok, template)
    row = encode_supervised(conv, chat_tok, cutoff_len=4096)
    assert row["input_ids"] == reference_ids(chat_tok, conv)


def test_think_tokenizer_and_enable_thinking(tiny_think_path):
    tok = AutoTokenizer.from_pretrained(tiny_think_path)
    info = apply_template(tok, None)
    assert info.supports_thinking and "<|im_end|>" in info.stop_strings
    for thinking in (True, False):
        conv = Conversation([Message("user", "Hi"), Message("assistant", "Hello")])
        row = encode_supervised(conv, tok, cutoff_len=512, enable_thinking=thinking)
        assert row["input_ids"] == reference_ids(tok, conv, enable_thinking=thinking)
    row = encode_supervised(CONV, tok, cutoff_len=512)
    assert "<think>\neasy sum\n</think>" in trained_text(tok, row)  # history reasoning is trained


def test_only_assistant_turns_and_end_token_are_trained(chat_tok):
    apply_template(chat_tok, "chatml")
    row = encode_supervised(CONV, chat_tok, cutoff_len=4096)
    assert trained_text(chat_tok, row) == ("Hello! How can I help?<|im_end|>\n"
                                           "<think>\neasy sum\n</think>\n\n4<|im_end|>\n")
    history = encode_supervised(CONV, chat_tok, cutoff_len=4096, mask_history=True)
    assert trained_text(chat_tok, history) == "<think>\neasy sum\n</think>\n\n4<|im_end|>\n"
    everything = encode_supervised(CONV, chat_tok, cutoff_len=4096, train_on_prompt=True)
    assert everything["labels"] == everything["input_ids"]


def test_tool_call_turns_are_trained(chat_tok):
    apply_template(chat_tok, "qwen")
    text = trained_text(chat_tok, encode_supervised(TOOL_CONV, chat_tok, cutoff_len=4096))
    assert '<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo"}}\n</tool_call>' in text
    assert "rain" not in text and text.endswith("Rain, 5C.<|im_end|>\n")


def test_truncation_keeps_start_and_drops_untrainable(chat_tok):
    apply_template(chat_tok, "chatml")
    full = encode_supervised(CONV, chat_tok, cutoff_len=4096)
    cut = encode_supervised(CONV, chat_tok, cutoff_len=30)
    assert cut["input_ids"] == full["input_ids"][:30]
    assert encode_supervised(CONV, chat_tok, cutoff_len=8) is None  # only prompt tokens remain


def test_default_system_and_pretrain(chat_tok):
    apply_template(chat_tok, "chatml")
    conv = Conversation([Message("user", "Hi"), Message("assistant", "Yo")])
    with_system = encode_supervised(conv, chat_tok, cutoff_len=512, default_system="Sys")
    assert chat_tok.decode(with_system["input_ids"]).startswith("<|im_start|>system\nSys<|im_end|>")
    row = encode_pretrain(TextSample("some text"), chat_tok)
    assert row["input_ids"][-1] == chat_tok.eos_token_id and row["labels"] == row["input_ids"]


def test_template_errors(chat_tok):
    with pytest.raises(DataError, match="did you mean .*'qwen3'"):
        apply_template(chat_tok, "qwen4")
    chat_tok.chat_template = None
    with pytest.raises(DataError, match="template: chatml"):
        apply_template(chat_tok, None)


def _render(source, messages, generation_prompt=False, **kwargs):
    out, _ = render_jinja_template(conversations=[messages], chat_template=source, bos_token="<s>",
                                   eos_token="</s>", add_generation_prompt=generation_prompt, **kwargs)
    return out[0]


@pytest.mark.parametrize("name", OWN_TEMPLATE_NAMES)
@pytest.mark.parametrize("conv", [CONV, TOOL_CONV], ids=["chat", "tools"])
@pytest.mark.parametrize("thinking", [True, False])
def test_named_templates_are_prefix_stable(name, conv, thinking):
    messages, tools = conv.to_chat_messages(), conv.chat_tools()
    full = _render(SOURCES[name], messages, tools=tools, enable_thinking=thinking)
    for k in range(1, len(messages) + 1):
        nxt = messages[k]["role"] if k < len(messages) else None
        if nxt == "tool":
            continue  # consecutive tool results share one turn in ChatML: boundaries are before/after
        prefix = _render(SOURCES[name], messages[:k], nxt == "assistant", tools=tools, enable_thinking=thinking)
        assert full.startswith(prefix), (name, k)


def test_packing_rows_are_deterministic_and_bounded():
    rows = [{"input_ids": list(range(n)), "labels": list(range(n))} for n in (5, 9, 3, 7, 2, 8)]
    packed = pack_rows(rows, 10)
    assert packed == pack_rows(rows, 10)
    assert all(len(r["input_ids"]) <= 10 for r in packed)
    assert sum(len(r["input_ids"]) for r in packed) == 34 and len(packed) == 4
    for row in packed:
        starts = [i for i, p in enumerate(row["position_ids"]) if p == 0]
        assert all(row["labels"][i] == IGNORE_INDEX for i in starts)


def _per_token_loss(model, batch) -> float:
    logits = model(**batch).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    total = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                              ignore_index=IGNORE_INDEX, reduction="sum")
    return total.item() / (labels != IGNORE_INDEX).sum().item()


@pytest.mark.parametrize("flatten", [True, False], ids=["one-padding-free-row", "padded-packed-rows"])
def test_padded_and_packed_losses_match(tiny_chat_path, chat_tok, flatten):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_chat_path, attn_implementation="sdpa")
    assert model.config.use_cache  # the case where transformers would otherwise skip packed masks
    apply_template(chat_tok, "chatml")
    convs = [Conversation([Message("user", "q " * k), Message("assistant", "answer " * k)]) for k in (1, 4, 7, 2, 5)]
    rows = [encode_supervised(c, chat_tok, cutoff_len=512) for c in convs]
    model.train()  # dropout is 0 in the tiny config; train mode is what the trainer runs
    with torch.no_grad():
        padded = _per_token_loss(model, PaddingCollator(chat_tok.pad_token_id)(rows))
        packed_batch = PackedCollator(chat_tok.pad_token_id, flatten=flatten)(pack_rows(rows, 64))
        packed = _per_token_loss(model, packed_batch)
        leaky = _per_token_loss(model, {k: v for k, v in packed_batch.items() if k != "position_ids"})
    rows_in_batch = packed_batch["input_ids"].shape[0]
    assert (rows_in_batch == 1 if flatten else rows_in_batch > 1) and "attention_mask" not in packed_batch
    assert abs(packed - padded) < 1e-5
    assert abs(leaky - padded) > 1e-4  # proves the boundaries matter, so the check above means something


# Like Qwen3's official template: reasoning is shown only on the last turn, so earlier turns
# render differently once later turns follow.
STRIPS_HISTORY = (
    "{%- for m in messages -%}{{- '<|im_start|>' + m['role'] + '\\n' -}}"
    "{%- if m['role'] == 'assistant' and loop.last and m['reasoning_content'] is defined -%}"
    "{{- '<think>' + m['reasoning_content'] + '</think>' -}}{%- endif -%}"
    "{{- m['content'] + '<|im_end|>\\n' -}}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")


def test_template_that_rewrites_history_is_reported_and_mask_history_works(chat_tok):
    from tunelab.data.convert import RowError

    chat_tok.chat_template = STRIPS_HISTORY
    conv = Conversation([Message("user", "a"), Message("assistant", "b", reasoning="r1"),
                         Message("user", "c"), Message("assistant", "d", reasoning="r2")])
    with pytest.raises(RowError, match="not prefix-stable.*mask_history"):
        encode_supervised(conv, chat_tok, cutoff_len=512)
    row = encode_supervised(conv, chat_tok, cutoff_len=512, mask_history=True)
    assert row["input_ids"] == reference_ids(chat_tok, conv)
    assert trained_text(chat_tok, row) == "<think>r2</think>d<|im_end|>\n"
