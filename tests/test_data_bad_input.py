"""Bad data files and model folders give a named error and exit 2, never a traceback (issue 13).

Exit codes (tunelab.cli): 0 done, 1 `data validate` found rows it would skip, 2 a reported
error (bad recipe, data or model), 3 an unexpected exception.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest


def tunelab(*args, cwd, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunelab", *args], cwd=cwd, env={**env, "NO_COLOR": "1",
                          "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)


BAD_FILES = {
    # name: (file name, bytes, words the error must contain)
    "latin": ("latin.json", '[{"instruction": "café", "output": "olé"}]'.encode("latin-1"),
              ["latin.json", "not UTF-8", "line 1, column 22", "iconv"]),
    "latin_lines": ("latin.jsonl", '{"instruction": "q", "output": "a"}\n{"instruction": "é"}\n'.encode("cp1252"),
                    ["latin.jsonl", "not UTF-8", "line 2"]),
    "latin_csv": ("latin.csv", "instruction,output\ncafé,olé\n".encode("latin-1"), ["latin.csv", "line 2"]),
    "binary": ("binary.json", bytes(range(256)) * 4, ["binary.json", "binary file"]),
    "deep": ("deep.json", b"[" * 100_000 + b"]" * 100_000, ["deep.json", "nested too deeply"]),
    "empty": ("empty.json", b"[]", ["dataset 'empty'", "has no rows"]),
}


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-data")
    (root / "data").mkdir()
    info = {}
    for name, (file_name, content, _) in BAD_FILES.items():
        (root / "data" / file_name).write_bytes(content)
        info[name] = {"file_name": file_name}
    (root / "data" / "good.json").write_text(json.dumps([{"instruction": "q", "output": "a"}]))
    info["good"] = {"file_name": "good.json"}
    (root / "data" / "dataset_info.json").write_text(json.dumps(info))
    return root


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_validate_names_the_file_and_exits_2(bad_dir, tunelab_env, name):
    done = tunelab("data", "validate", name, cwd=bad_dir, env=tunelab_env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "tunelab data error" in done.stderr
    for words in BAD_FILES[name][2]:
        assert words in done.stderr, done.stderr


def test_validate_and_train_agree_that_an_empty_list_is_unusable(bad_dir, tunelab_env):
    """`[]` was "all rows are usable" for validate while train refused it: one rule for both."""
    checked = tunelab("data", "validate", "good", "empty", cwd=bad_dir, env=tunelab_env)
    assert checked.returncode == 2 and "all rows are usable" not in checked.stdout
    trained = tunelab("train", "dataset=empty", "model_name_or_path=tunelab/tiny-chat", "max_steps=1",
                      f"output_dir={bad_dir / 'run'}", cwd=bad_dir, env=tunelab_env)
    assert trained.returncode == 2 and "Traceback" not in trained.stderr
    assert checked.stderr.strip().splitlines()[-2:] == trained.stderr.strip().splitlines()[-2:]


def test_train_on_a_latin1_file_is_a_data_error(bad_dir, tunelab_env):
    done = tunelab("train", "dataset=latin", "model_name_or_path=tunelab/tiny-chat", "max_steps=1",
                   f"output_dir={bad_dir / 'run-latin'}", cwd=bad_dir, env=tunelab_env)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "latin.json: is not UTF-8 text" in done.stderr
    assert not (bad_dir / "run-latin" / "manifest.json").exists()


def test_skipped_rows_exit_1_unlike_errors(bad_dir, tunelab_env):
    (bad_dir / "data" / "some_bad.jsonl").write_text('{"instruction": "q", "output": "a"}\n{oops\n')
    info = json.loads((bad_dir / "data" / "dataset_info.json").read_text())
    (bad_dir / "data" / "dataset_info.json").write_text(json.dumps({**info, "some_bad": {"file_name": "some_bad.jsonl"}}))
    done = tunelab("data", "validate", "some_bad", cwd=bad_dir, env=tunelab_env)
    assert done.returncode == 1 and "some_bad: 1/2 rows usable, 1 skipped" in done.stdout


@pytest.fixture(scope="module")
def broken_models(tiny_chat_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("broken-models")
    no_tok = root / "no-tokenizer"
    no_tok.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        shutil.copy(tiny_chat_path / name, no_tok / name)
    cut = root / "truncated"
    shutil.copytree(tiny_chat_path, cut)
    weights = cut / "model.safetensors"
    os.truncate(weights, weights.stat().st_size // 2)
    return {"no-tokenizer": no_tok, "truncated": cut}


@pytest.mark.parametrize("command", [["data", "preview", "identity", "--rows", "1", "--model"],
                                     ["chat", "--query", "hi", "--model"]])
def test_model_folder_without_tokenizer(broken_models, tunelab_env, tmp_path, command):
    done = tunelab(*command, str(broken_models["no-tokenizer"]), cwd=tmp_path, env=tunelab_env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "has no tokenizer" in done.stderr and "tokenizer.json" in done.stderr


def test_truncated_safetensors(broken_models, tunelab_env, tmp_path):
    """chat, train and export all load weights through tunelab.model.load_model."""
    done = tunelab("chat", "--query", "hi", "--model", str(broken_models["truncated"]),
                   cwd=tmp_path, env=tunelab_env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "model.safetensors is truncated" in done.stderr and "its header describes" in done.stderr
