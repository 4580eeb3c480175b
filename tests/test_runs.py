"""RunStore finds every run under a folder and tells running, completed, failed and killed apart,
on run directories written by real `tunelab train` processes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunelab.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
BASE = ["examples/tiny_lora_sft.yaml", "per_device_train_batch_size=4", "cutoff_len=128",
        "max_samples=16", "plot_loss=false", "save_steps=1000", "additional_target=null"]


def train(*args, env):
    return subprocess.run([sys.executable, "-m", "tunelab", "train", *BASE, *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)


def by_name(root):
    return {info.name: info for info in RunStore([root]).discover()}


def logged_step(run):
    path = run / "events.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return max([json.loads(x)["step"] for x in lines if '"type": "log"' in x] or [0])


@pytest.mark.slow
def test_discovery_and_status_of_running_completed_failed_and_killed_runs(tmp_path, tunelab_env):
    root = tmp_path / "saves"
    # Shorter than logging_steps: no log event at all, the step comes from the manifest.
    done = train(f"output_dir={root / 'done'}", "max_steps=2", "logging_steps=10", env=tunelab_env)
    assert done.returncode == 0, done.stderr
    failed = train(f"output_dir={root / 'nan'}", "max_steps=6", "logging_steps=1",
                   "learning_rate=1e30", env=tunelab_env)
    assert failed.returncode == 2, failed.stderr
    nested = root / "tiny-chat" / "lora" / "live"
    live = subprocess.Popen([sys.executable, "-m", "tunelab", "train", *BASE, "max_steps=5000",
                             "logging_steps=1", f"output_dir={nested}"], cwd=ROOT, env=tunelab_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while logged_step(nested) < 2:
            assert live.poll() is None and time.time() < deadline
            time.sleep(0.1)
        runs = by_name(root)
        assert set(runs) == {"done", "nan", "live"}
        assert runs["live"].status == "running" and runs["live"].step >= 2
        assert runs["live"].total_steps == 5000
        assert list(runs)[0] == "live"  # newest first
    finally:
        os.kill(live.pid, signal.SIGKILL)
        live.wait()
    runs = by_name(root)
    assert json.loads((nested / "manifest.json").read_text())["status"] == "running"
    assert runs["live"].status == "interrupted"  # the manifest says running; its process is gone
    assert runs["done"].status == "completed" and runs["done"].step == 2
    assert runs["done"].total_steps == 2
    assert runs["nan"].status == "failed" and 1 < runs["nan"].step < 6
    assert runs["done"].model == "tunelab/tiny-chat" and runs["done"].finetuning_type == "lora"
