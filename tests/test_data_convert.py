"""Row conversion: every kind of bad row gets its own message, with the file and row."""

from __future__ import annotations

import json

import pytest

from tunelab.data.convert import RowError, to_sample
from tunelab.data.registry import parse_entry

ALPACA = parse_entry("a", {"file_name": "a.json", "columns": {"system": "system", "history": "history"}}, "p")
SHAREGPT = parse_entry("s", {"file_name": "s.json", "formatting": "sharegpt", "columns": {"tools": "tools"}}, "p")
OPENAI = parse_entry("o", {"file_name": "o.json", "formatting": "openai"}, "p")


def msgs(*pairs):
    return {"conversations": [{"from": f, "value": v} for f, v in pairs]}


def test_alpaca_with_history_system_and_placeholders():
    row = {"instruction": "I am {{name}}", "input": "ctx", "output": "Hi {{name}}, {{unknown}}",
           "history": [["q0", "a0"]], "system": "sys"}
    conv = to_sample(row, ALPACA, "a.json:1", "sft", {"name": "Tuney"})
    assert conv.to_chat_messages() == [
        {"role": "system", "content": "sys"}, {"role": "user", "content": "q0"},
        {"role": "assistant", "content": "a0"}, {"role": "user", "content": "I am Tuney\nctx"},
        {"role": "assistant", "content": "Hi Tuney, {{unknown}}"}]
    assert conv.source == "a.json:1"


def test_sharegpt_tools_and_default_system():
    row = msgs(("human", "weather?"), ("function_call", '{"name": "w", "arguments": {"city": "Oslo"}}'),
               ("observation", "rain"), ("gpt", "It rains."))
    row["tools"] = json.dumps([{"name": "w", "parameters": {}}])
    chat = to_sample(row, SHAREGPT, "s.json:1", "sft").to_chat_messages(default_system="dflt")
    assert chat[0] == {"role": "system", "content": "dflt"}
    assert chat[2]["tool_calls"] == [{"type": "function", "function": {"name": "w", "arguments": {"city": "Oslo"}}}]
    assert chat[3] == {"role": "tool", "content": "rain"}


def test_openai_native_tool_calls_and_reasoning():
    row = {"messages": [
        {"role": "system", "content": "s"}, {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]},
        {"role": "tool", "content": "1"}, {"role": "assistant", "content": "ok", "reasoning_content": "think"}]}
    conv = to_sample(row, OPENAI, "o.json:1", "sft")
    assert conv.system == "s" and conv.messages[1].tool_calls == [{"name": "f", "arguments": {"x": 1}}]
    assert conv.to_chat_messages()[-1]["reasoning_content"] == "think"


@pytest.mark.parametrize("spec, row, expected", [
    (ALPACA, {"instrction": "x", "output": "y"},
     ["missing column 'instruction'", "did you mean 'instrction'", "'output'"]),
    (ALPACA, {"instruction": "x", "output": "  "}, ["empty assistant turn (column 'output')"]),
    (ALPACA, {"instruction": "x", "output": "y", "history": [["only one"]]}, ["'history' item 1"]),
    (SHAREGPT, msgs(("human", "q"), ("gpt", "")), ["message 2: empty assistant turn"]),
    (SHAREGPT, msgs(("human", "q"), ("human", "q")), ["message 2 is 'human'", "'gpt' or 'function_call' was expected"]),
    (SHAREGPT, msgs(("gpt", "a")), ["message 1 is 'gpt'", "'human' was expected"]),
    (SHAREGPT, msgs(("human", "q"), ("bot", "a")), ["unknown role 'bot'", "'human', 'gpt'"]),
    (SHAREGPT, msgs(("human", "q"), ("function_call", "{oops")), ["message 2 (function_call) is not valid JSON"]),
    (SHAREGPT, msgs(("human", "q"), ("gpt", "a"), ("human", "more")), ["ends with a 'human' turn"]),
    (SHAREGPT, {"conversations": [{"role": "user", "content": "q"}]}, ["no 'from' key", "role_tag"]),
    (SHAREGPT, {"messages": []}, ["missing column 'conversations'"]),
    (SHAREGPT, {"__tunelab_row_error__": "not valid JSON (x)"}, ["not valid JSON"]),
    (parse_entry("m", {"file_name": "m.json", "columns": {"images": "images"}}, "p"),
     {"instruction": "<image>what?", "output": "a cat", "images": ["cat.png"]}, ["row has images", "text-only"]),
])
def test_bad_rows_have_precise_reasons(spec, row, expected):
    with pytest.raises(RowError) as err:
        to_sample(row, spec, "file.json:7", "sft")
    assert str(err.value).startswith("file.json:7: ")
    for text in expected:
        assert text in err.value.reason


def test_pretrain_text_column():
    c4 = parse_entry("c4", {"file_name": "c.jsonl", "columns": {"prompt": "text"}}, "p")
    assert to_sample({"text": "hello"}, c4, "c.jsonl:1", "pt").text == "hello"
    assert to_sample({"text": "plain"}, ALPACA, "t.txt:1", "pt").text == "plain"
    with pytest.raises(RowError, match="empty text"):
        to_sample({"text": " "}, c4, "c.jsonl:2", "pt")
