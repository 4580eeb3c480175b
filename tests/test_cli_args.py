"""The command line as typed: key=value after an option (every command), and no library noise.

Real `python -m tunelab` subprocesses; issue 13 items 17 and 22.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Lines from libraries that a TuneLab user cannot act on (tunelab.quiet drops them at the source).
NOISE = ("Failed to load CPU gemm_4bit_forward", "MatMul8bitLt", "is_gradient_checkpointing",
         "FutureWarning")


def tunelab(*args, env, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunelab", *args], cwd=cwd,
                          env={**env, "NO_COLOR": "1", "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)


def assert_quiet(stderr: str) -> None:
    noisy = [line for line in stderr.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, noisy[:5]


def test_data_preview_takes_a_pair_after_rows(tunelab_env):
    done = tunelab("data", "preview", "identity", "--rows", "1", "cutoff_len=8", env=tunelab_env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "dropped: no answer token left within cutoff_len=8" in done.stdout
    assert_quiet(done.stderr)


def test_data_validate_takes_a_pair_after_an_option(tunelab_env):
    done = tunelab("data", "validate", "identity", "--stage", "sft", "max_samples=2", env=tunelab_env)
    assert done.returncode == 0 and "identity: 2/2 rows usable" in done.stdout, done.stderr


def test_a_word_that_is_no_pair_is_still_refused(tunelab_env):
    done = tunelab("data", "preview", "identity", "--rows", "1", "cutof_len", env=tunelab_env)
    assert done.returncode == 2 and "unrecognized arguments: cutof_len" in done.stderr


def test_chat_8bit_takes_pairs_after_query_and_is_quiet(tunelab_env):
    """8-bit chat used to print one MatMul8bitLt line per matmul."""
    done = tunelab("chat", "--model", "tunelab/tiny-chat", "--query", "hi", "max_new_tokens=4",
                   "quantization_bit=8", "temperature=0", env=tunelab_env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip(), "no answer printed"
    assert_quiet(done.stderr)
    refused = tunelab("chat", "--model", "tunelab/tiny-chat", "--query", "hi", "max_new_tokens=ten",
                      env=tunelab_env)
    assert refused.returncode == 2 and "max_new_tokens" in refused.stderr, refused.stderr[-2000:]


def test_export_takes_a_pair_after_out(tunelab_env, tmp_path):
    out = tmp_path / "merged"
    done = tunelab("export", "--model", "tunelab/tiny-chat", "--out", str(out), "export_dtype=bfloat16",
                   env=tunelab_env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    assert_quiet(done.stderr)


def test_train_is_quiet(tunelab_env, tmp_path):
    """LoRA training printed bitsandbytes' kernel hint and a transformers FutureWarning (via PEFT)."""
    done = tunelab("train", "examples/tiny_lora_sft.yaml", "max_steps=1", f"output_dir={tmp_path / 'run'}",
                   env=tunelab_env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_quiet(done.stderr)


def test_offline_hint_names_a_command_the_venv_has(tunelab_env, tmp_path):
    done = tunelab("data", "preview", "identity", "--model", "someorg/not-cached", env=tunelab_env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "hf download" in done.stderr and "huggingface-cli" not in done.stderr
    assert (Path(sys.executable).parent / "hf").exists()
