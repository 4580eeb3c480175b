"""The GPU benchmark's parts that run without a GPU: bench/gpu.sh's argument handling and plan
(--dry-run), the model shapes it builds, and the FLOPs its MFU divides."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import gpu_models  # noqa: E402
import mfu  # noqa: E402


def gpu_sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "bench/gpu.sh", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_dry_run_plans_every_size_and_method_and_runs_nothing(tmp_path):
    out = tmp_path / "results.jsonl"
    proc = gpu_sh("--dry-run", "--sizes", "0.5b,1.5b", "--methods", "lora,full", "--rounds", "3",
                  "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    plans = [line for line in proc.stderr.splitlines() if "bench/bench_train.py" in line]
    assert len(plans) == 4
    for size, method in [("0.5b", "lora"), ("0.5b", "full"), ("1.5b", "lora"), ("1.5b", "full")]:
        assert any(f"qwen2.5-{size}-random " in p and f"--finetuning {method} " in p for p in plans)
    assert all("--bf16" in p and "--rounds 3" in p and "llamafactory" in p for p in plans)
    assert "bench/bench_table.py" in proc.stderr and not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--sizes", "7b"], "--sizes: unknown '7b'; choose from: 0.5b 1.5b"),
    (["--methods", "qlora"], "--methods: unknown 'qlora'; choose from: lora full"),
    (["--rounds", "0"], "--rounds needs a positive whole number, got '0'"),
    (["--rows", "900"], "--rows: the two alpaca demos hold 600 rows, got 900"),
    (["--peak-tflops", "fast"], "--peak-tflops needs a number, got 'fast'"),
    (["--out"], "--out needs a value"),
    (["--frobnicate"], "unknown option '--frobnicate'"),
])
def test_bad_arguments_say_what_is_wrong(args, message):
    proc = gpu_sh("--dry-run", *args)
    assert proc.returncode == 2 and message in proc.stderr


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine has a GPU")
def test_without_a_gpu_it_says_so():
    proc = gpu_sh()
    assert proc.returncode == 1 and "no NVIDIA GPU here" in proc.stderr


def test_model_shapes_are_the_published_qwen25_sizes():
    # Qwen2.5-0.5B and -1.5B model cards: 494,032,768 and 1,543,714,304 parameters.
    assert gpu_models.parameter_count("0.5b") == 494_032_768
    assert gpu_models.parameter_count("1.5b") == 1_543_714_304


def test_flops_per_token_by_hand(tmp_path):
    (tmp_path / "config.json").write_text(
        '{"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, '
        '"num_key_value_heads": 1, "intermediate_size": 16, "vocab_size": 100}')
    # Matmul weights: per layer q 64 + o 64 + k 32 + v 32 + MLP 3 x 128 = 576; x2 layers + head 800.
    # Forward: 2 x 1952 + attention 2 x 2 layers x 8 x 10 tokens = 4224.
    assert mfu.flops_per_token(tmp_path, "full", 10) == 3 * 4224
    assert mfu.flops_per_token(tmp_path, "lora", 10) == 2 * 4224
    assert mfu.mfu(1000.0, 1e9, 100.0) == 0.01 and mfu.mfu(1000.0, 1e9, None) is None
