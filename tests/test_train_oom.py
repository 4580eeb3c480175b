"""A real out-of-memory failure during training is explained, not dumped as a traceback."""

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT_BYTES = 10 * 2**30


def _limit_address_space():
    # The allocator then fails cleanly (as a CUDA OOM would) instead of the kernel killing us.
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS semantics are Linux's")
def test_out_of_memory_reports_step_estimate_and_suggestions(tmp_path, tunelab_env):
    out = tmp_path / "run"
    # Eager attention over one packed row of every pre-training token needs far more than 10 GiB.
    proc = subprocess.run(
        [sys.executable, "-m", "tunelab", "train", "examples/tiny_lora_pt.yaml", f"output_dir={out}",
         "flash_attn=eager", "packing=true", "cutoff_len=65536", "per_device_train_batch_size=1",
         "max_steps=2", "chunked_loss=false"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=tunelab_env,
        preexec_fn=_limit_address_space)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr
    text = proc.stderr.lower()
    assert "out of memory" in text and "step 0" in text and "estimate" in text
    # eager attention's seq^2 scores dominate: SDPA is the lever, and checkpointing halves the rest
    assert "- flash_attn=sdpa:" in text and "- gradient_checkpointing=true:" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed"
