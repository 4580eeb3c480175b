"""The offline tiny-model factory (tunelab.testing), its CLI, and the demo datasets it learns from."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tunelab.errors import ModelError
from tunelab.testing import BUILTIN_MODELS, build_tiny_model, builtin_model_path, is_builtin
from tunelab.testing import builtin as builtin_module
from tunelab.testing import factory
from tunelab.testing.tokenizer import train_tokenizer_json

REPO = Path(__file__).resolve().parents[1]

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]

PLAIN = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "2 + 3 = 5."},
    {"role": "user", "content": "你好,你是谁?"},
    {"role": "assistant", "content": "我是一个助手。"},
]

TOOL_CHAT = [
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content": "",
     "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
    {"role": "tool", "content": '{"temperature": 4}'},
    {"role": "assistant", "content": "It is 4 °C in Oslo."},
]

REASONING = [
    {"role": "user", "content": "What is 6 × 7?"},
    {"role": "assistant", "content": "42.", "reasoning_content": "Six sevens are forty-two."},
    {"role": "user", "content": "And 6 × 8?"},
    {"role": "assistant", "content": "48."},
]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def chat_tok(tiny_chat_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_chat_path)


@pytest.fixture(scope="module")
def think_tok(tiny_think_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_think_path)


def _render(tok, messages, **kwargs) -> str:
    return tok.apply_chat_template(messages, tokenize=False, **kwargs)


# ---------------------------------------------------------------- build and load

def test_build_is_byte_for_byte_reproducible(tmp_path):
    # Clear the in-process cache so the tokenizer is really trained twice.
    train_tokenizer_json.cache_clear()
    first = build_tiny_model(tmp_path / "a", variant="think")
    train_tokenizer_json.cache_clear()
    second = build_tiny_model(tmp_path / "b", variant="think")
    names = sorted(p.name for p in first.iterdir())
    assert {"model.safetensors", "tokenizer.json", "config.json", "generation_config.json"} <= set(names)
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert _digest(first / name) == _digest(second / name), name


def test_seed_changes_weights_only(tmp_path):
    a = build_tiny_model(tmp_path / "a", seed=0)
    b = build_tiny_model(tmp_path / "b", seed=1)
    assert _digest(a / "model.safetensors") != _digest(b / "model.safetensors")
    assert _digest(a / "tokenizer.json") == _digest(b / "tokenizer.json")


def test_loads_offline_with_auto_classes(tiny_chat_path, chat_tok, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_path)
    assert model.dtype == torch.float32
    assert 100_000 < model.num_parameters() < 1_000_000
    assert model.config.vocab_size % 64 == 0 and model.config.vocab_size >= len(chat_tok)
    im_end, eot = chat_tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert chat_tok.eos_token == "<|im_end|>" and chat_tok.pad_token == "<|endoftext|>"
    assert chat_tok.bos_token is None
    assert model.config.eos_token_id == im_end and model.config.pad_token_id == eot
    assert set(model.generation_config.eos_token_id) == {im_end, eot}
    ids = chat_tok.apply_chat_template(PLAIN[:2], add_generation_prompt=True, return_dict=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert logits.shape == (1, ids["input_ids"].shape[1], model.config.vocab_size)


def test_bench_size_is_25_to_40m_params(chat_tok):
    import torch
    from transformers import LlamaForCausalLM

    config = factory.model_config(chat_tok, "bench")
    with torch.device("meta"):  # shapes only: no memory, no init time
        model = LlamaForCausalLM(config)
    assert config.vocab_size == 8192
    assert 25e6 <= model.num_parameters() <= 40e6


def test_size_overrides_and_bad_size(chat_tok):
    config = factory.model_config(chat_tok, {"num_hidden_layers": 1, "hidden_size": 32})
    assert (config.num_hidden_layers, config.hidden_size, config.intermediate_size) == (1, 32, 176)
    with pytest.raises(ModelError, match="bench"):
        factory.model_config(chat_tok, "huge")
    with pytest.raises(ModelError, match="vocab_size"):
        factory.model_config(chat_tok, {"vocab_size": 10})


# ---------------------------------------------------------------- tokenizer

@pytest.mark.parametrize("text", [
    "Hello world! What is 37 + 58? It's 95.",
    "  leading spaces, tabs\tand\nnew lines  ",
    "你好,世界!今天的天气非常晴朗。",
    "Mixed 中文 and English, émojis 🙂 and ünïcödé.",
])
def test_tokenizer_round_trips(chat_tok, text):
    ids = chat_tok(text, add_special_tokens=False)["input_ids"]
    assert chat_tok.decode(ids) == text


def test_special_tokens_are_atomic(chat_tok):
    for token in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>", "</tool_call>"):
        assert len(chat_tok(token, add_special_tokens=False)["input_ids"]) == 1, token
    ids = chat_tok("<|im_start|>assistant\n<think>\nhm\n</think>\n\nok<|im_end|>", add_special_tokens=False)["input_ids"]
    # Markup tokens are kept when special tokens are skipped, so reasoning can still be parsed.
    assert chat_tok.decode(ids, skip_special_tokens=True) == "assistant\n<think>\nhm\n</think>\n\nok"


# ---------------------------------------------------------------- chat template

def test_template_renders_chatml(chat_tok):
    expected = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n"
                "<|im_start|>assistant\n2 + 3 = 5.<|im_end|>\n")
    assert _render(chat_tok, PLAIN[:3]) == expected
    # No default system prompt is invented.
    assert _render(chat_tok, PLAIN[1:2]) == "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n"


def test_generation_prompt(chat_tok, think_tok):
    for tok in (chat_tok, think_tok):
        assert _render(tok, PLAIN[:2], add_generation_prompt=True).endswith("<|im_end|>\n<|im_start|>assistant\n")


def test_template_renders_tools_and_tool_calls(chat_tok):
    text = _render(chat_tok, TOOL_CHAT, tools=TOOLS)
    assert text.startswith("<|im_start|>system\n# Tools\n")
    assert json.dumps(TOOLS) in text
    assert ('<|im_start|>assistant\n<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}'
            "</tool_call><|im_end|>\n") in text
    assert "<|im_start|>tool\n{\"temperature\": 4}<|im_end|>\n" in text
    # Arguments already encoded as a JSON string are not encoded twice.
    as_string = [dict(TOOL_CHAT[1], tool_calls=[{"name": "get_weather", "arguments": '{"city": "Oslo"}'}])]
    assert '"arguments": {"city": "Oslo"}}</tool_call>' in _render(chat_tok, as_string)


@pytest.mark.parametrize("conversation", [PLAIN, TOOL_CHAT, REASONING])
@pytest.mark.parametrize("kwargs", [{}, {"tools": TOOLS}, {"enable_thinking": False}])
def test_rendering_is_prefix_stable(chat_tok, think_tok, conversation, kwargs):
    for tok in (chat_tok, think_tok):
        full = _render(tok, conversation, **kwargs)
        for k in range(1, len(conversation)):
            assert full.startswith(_render(tok, conversation[:k], **kwargs))
            thinking_off_with_reasoning = kwargs.get("enable_thinking") is False and conversation[k].get(
                "reasoning_content")
            if conversation[k]["role"] == "assistant" and not thinking_off_with_reasoning:
                # The prompt the model generates from is a prefix of the trained-on turn (a turn
                # that has reasoning cannot follow the empty think block of thinking-off mode).
                assert full.startswith(_render(tok, conversation[:k], add_generation_prompt=True, **kwargs))
        assert full.endswith("<|im_end|>\n")


def test_think_template_renders_reasoning_in_every_turn(think_tok):
    text = _render(think_tok, REASONING)
    assert "<|im_start|>assistant\n<think>\nSix sevens are forty-two.\n</think>\n\n42.<|im_end|>\n" in text
    assert text.endswith("<|im_start|>assistant\n48.<|im_end|>\n")


def test_think_template_honours_enable_thinking(think_tok, chat_tok):
    prompt = PLAIN[:2]
    off = _render(think_tok, prompt, add_generation_prompt=True, enable_thinking=False)
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    for kwargs in ({}, {"enable_thinking": True}):
        assert _render(think_tok, prompt, add_generation_prompt=True, **kwargs).endswith("<|im_start|>assistant\n")
    # With thinking off, a turn without reasoning carries the same empty block as the prompt.
    assert _render(think_tok, REASONING, enable_thinking=False).endswith(
        "<|im_start|>assistant\n<think>\n\n</think>\n\n48.<|im_end|>\n")
    # The plain chat template ignores the variable.
    assert _render(chat_tok, prompt, add_generation_prompt=True, enable_thinking=False).endswith("assistant\n")


# ---------------------------------------------------------------- built-in cache

def _counting_builds(monkeypatch) -> list:
    built = []
    real = factory.build_tiny_model

    def counting(out_dir, **kwargs):
        built.append(Path(out_dir))
        return real(out_dir, **kwargs)

    monkeypatch.setattr(factory, "build_tiny_model", counting)
    return built


def test_builtin_model_path_builds_once(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELAB_HOME", str(tmp_path))
    built = _counting_builds(monkeypatch)
    first = builtin_model_path("tunelab/tiny-chat")
    second = builtin_model_path("tunelab/tiny-chat")
    assert first == second and len(built) == 1
    assert first.parent == tmp_path / "models" and first.name.startswith("tunelab--tiny-chat-")
    assert (first / "model.safetensors").is_file()
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no scratch folder left


def test_builtin_build_tolerates_a_concurrent_winner(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELAB_HOME", str(tmp_path))
    real = factory.build_tiny_model

    def racing(out_dir, **kwargs):
        # Another process finishes the same model while we are still building ours.
        result = real(out_dir, **kwargs)
        winner = tmp_path / "models" / f"tunelab--tiny-think-{builtin_module.build_fingerprint()}"
        shutil.copytree(result, winner)
        (winner / "winner").write_text("")
        return result

    monkeypatch.setattr(factory, "build_tiny_model", racing)
    path = builtin_model_path("tunelab/tiny-think")
    assert (path / "winner").exists()
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_builtin_names():
    assert BUILTIN_MODELS == ("tunelab/tiny-chat", "tunelab/tiny-think", "tunelab/bench-chat")
    assert is_builtin("tunelab/tiny-think") and not is_builtin("tunelab/huge")
    with pytest.raises(ModelError) as info:
        builtin_model_path("tunelab/huge")
    assert "tunelab/tiny-chat" in str(info.value) and "tunelab/huge" in str(info.value)


# ---------------------------------------------------------------- CLI (real subprocesses)

# Drives only `tunelab tiny`, so it does not depend on the other command modules being present.
_TINY_ONLY = ("import argparse, sys\n"
              "from tunelab.cli import tiny\n"
              "parser = argparse.ArgumentParser(prog='tunelab')\n"
              "tiny.register(parser.add_subparsers())\n"
              "args = parser.parse_args(sys.argv[1:])\n"
              "sys.exit(args.func(args))\n")


def _run(argv: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=full_env, timeout=120)


def test_cli_tiny_build_and_path(tmp_path):
    done = _run(["-c", _TINY_ONLY, "tiny", "build", "--variant", "think", "--out", str(tmp_path / "m")])
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == tmp_path / "m"
    assert "enable_thinking" in (tmp_path / "m" / "chat_template.jinja").read_text()
    home = tmp_path / "home"
    done = _run(["-c", _TINY_ONLY, "tiny", "path", "tunelab/tiny-chat"], env={"TUNELAB_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent == home / "models"


def test_tunelab_entrypoint_runs_tiny(tmp_path):
    done = _run(["-m", "tunelab", "tiny", "build", "--out", str(tmp_path / "m")])
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m" / "model.safetensors").is_file()
    done = _run(["-m", "tunelab", "tiny", "path", "tunelab/nope"], env={"TUNELAB_HOME": str(tmp_path)})
    assert done.returncode == 2 and "tunelab/tiny-chat" in done.stderr


# ---------------------------------------------------------------- demo data

def _demo_generator():
    """scripts/make_demo_data.py, imported from the checkout (it imports its sibling demo_text)."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import make_demo_data
    finally:
        sys.path.pop(0)
    return make_demo_data


def test_demo_datasets_are_packaged_registered_and_in_sync():
    from tunelab.resources import demo_data_dir
    from tunelab.testing.tokenizer import DEMO_FILES, demo_files

    gen = _demo_generator()
    data = demo_data_dir()
    # Inside the package (what a wheel ships), and where the generator writes.
    assert data == Path(builtin_module.__file__).resolve().parents[1] / "resources" / "data"
    assert gen.HERE == data
    assert [p.name for p in demo_files()] == list(DEMO_FILES)
    info = json.loads((data / "dataset_info.json").read_text(encoding="utf-8"))
    for name, entry in gen.DATASET_INFO.items():
        assert info[name] == entry
        assert (data / entry["file_name"]).is_file()
    # The committed files are exactly what the generator produces.
    rng = gen.random.Random(gen.SEED)
    en, zh = gen.alpaca_en_rows(rng), gen.alpaca_zh_rows(rng)
    assert json.loads((data / "alpaca_en_demo.json").read_text(encoding="utf-8")) == en
    assert json.loads((data / "alpaca_zh_demo.json").read_text(encoding="utf-8")) == zh
    assert json.loads((data / "identity.json").read_text(encoding="utf-8")) == gen.identity_rows()
    assert len((data / "pt_demo.jsonl").read_text(encoding="utf-8").splitlines()) == 200
