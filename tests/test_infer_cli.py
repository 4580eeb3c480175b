"""`tunelab chat` as a real subprocess: one-shot --query, and an interactive session on stdin."""

from __future__ import annotations

import subprocess
import sys

import pytest
from test_infer_support import PAIRS, built_once, child_env, train_distinct_answers


@pytest.fixture(scope="module")
def distinct_path(tmp_path_factory, tiny_chat_path):
    return built_once(tmp_path_factory, "distinct", lambda out: train_distinct_answers(tiny_chat_path, out))


def chat(args: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunelab", "chat", *args], input=stdin, text=True,
                          capture_output=True, env=child_env(), timeout=180)


def test_query_prints_the_answer_and_exits(distinct_path):
    done = chat(["--model", str(distinct_path), "--query", PAIRS[9][0], "do_sample=false"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == PAIRS[9][1]


def test_interactive_session_with_commands(distinct_path):
    lines = "\n".join([PAIRS[10][0], "/system You are terse.", PAIRS[11][0], "/clear", "/bogus",
                       PAIRS[12][0], "/exit", "never read"]) + "\n"
    done = chat(["--model", str(distinct_path), "do_sample=false", "max_new_tokens=24"], lines)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"Assistant: {PAIRS[10][1]}" in out and f"Assistant: {PAIRS[12][1]}" in out
    assert "system prompt set; history cleared" in out and "history cleared" in out
    assert "unknown command /bogus" in out and "never read" not in out


def test_missing_model_is_a_clear_error(tmp_path):
    done = chat(["--model", str(tmp_path / "nowhere"), "--query", "hi"])
    assert done.returncode == 2 and "no such folder" in done.stderr and "Traceback" not in done.stderr


def test_four_bit_chat_runs_on_cpu(distinct_path):
    """bitsandbytes' fast CPU kernel cannot pack the tiny model's 176-wide MLP; chat must still run."""
    done = chat(["--model", str(distinct_path), "--query", PAIRS[13][0], "quantization_bit=4",
                 "do_sample=false", "max_new_tokens=8"])
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and done.stdout.strip()
