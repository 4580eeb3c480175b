"""Training that can be trusted: NaN stops a run, signals save a checkpoint, resume picks only
complete checkpoints and says what it will do, and one recipe + seed gives one result."""

import json
import math
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
BASE = ["examples/tiny_lora_sft.yaml", "logging_steps=1", "per_device_train_batch_size=4",
        "cutoff_len=128", "max_samples=16", "plot_loss=false", "additional_target=null"]


def tunelab(*args, env, code=0):
    proc = subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc


def events(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "events.jsonl").read_text().splitlines()]


def manifest(run_dir):
    return json.loads((Path(run_dir) / "manifest.json").read_text())


def assert_same_weights(a_dir, b_dir, exact=False):
    a = load_file(Path(a_dir) / "adapter_model.safetensors")
    b = load_file(Path(b_dir) / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        if exact:
            assert torch.equal(a[key], b[key]), key
        else:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_an_exploding_learning_rate_stops_the_run_at_the_nan_step(tmp_path, tunelab_env):
    out = tmp_path / "nan"
    proc = tunelab("train", *BASE, f"output_dir={out}", "max_steps=8", "save_steps=2",
                   "learning_rate=1e30", env=tunelab_env, code=2)
    assert "Traceback" not in proc.stderr
    found = manifest(out)
    step = found["global_step"]
    assert found["status"] == "failed" and 1 < step < 8
    assert f"non-finite at step {step}" in proc.stderr and f"non-finite at step {step}" in found["error"]
    assert "lower learning_rate" in proc.stderr
    first = (step - 1) % 4 * 4 + 1  # 16 rows, 4 per step: the step's rows in its epoch
    assert f"rows {first}-{first + 3} of epoch {(step - 1) // 4 + 1}" in proc.stderr
    # The NaN step is logged as NaN (null + named), never as a number; training stopped there.
    logs = {e["step"]: e for e in events(out) if e["type"] == "log"}
    assert max(logs) == step and logs[step]["loss"] is None and "loss" in logs[step]["nonfinite"]
    assert all(math.isfinite(e["loss"]) and e["loss"] > 0 for s, e in logs.items() if s < step)
    # No final adapter from NaN weights; the checkpoints kept are finite.
    assert not (out / "adapter_model.safetensors").exists()
    kept = sorted(out.glob("checkpoint-*"))
    assert kept and all(int(p.name[11:]) < step for p in kept)
    assert f"last good checkpoint is {kept[-1].name}" in proc.stderr
    for tensor in load_file(kept[-1] / "adapter_model.safetensors").values():
        assert torch.isfinite(tensor).all()


def test_two_fresh_runs_of_one_recipe_and_seed_give_identical_weights(tmp_path, tunelab_env):
    for name in ("a", "b"):
        tunelab("train", *BASE, f"output_dir={tmp_path / name}", "max_steps=2", "save_steps=100",
                env=tunelab_env)
    assert_same_weights(tmp_path / "a", tmp_path / "b", exact=True)


@pytest.fixture(scope="module")
def four_step_run(tmp_path_factory, tunelab_env_module):
    """A finished 4-step run with checkpoint-2 and checkpoint-4."""
    out = tmp_path_factory.mktemp("resume") / "run"
    tunelab("train", *BASE, f"output_dir={out}", "max_steps=4", "save_steps=2",
            env=tunelab_env_module)
    return out


@pytest.fixture(scope="module")
def tunelab_env_module(tunelab_home):
    import os

    return {**os.environ, "TUNELAB_HOME": str(tunelab_home), "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def stopped_copy(run, dest, keep_step):
    """The run as it was right after ``keep_step``: later checkpoints, final files and events gone."""
    shutil.copytree(run, dest)
    for path in dest.glob("checkpoint-*"):
        if int(path.name[11:]) > keep_step:
            shutil.rmtree(path)
    for path in dest.glob("adapter_*"):
        path.unlink()
    return dest


def test_last_skips_a_half_written_checkpoint(tmp_path, tunelab_env, four_step_run):
    run = stopped_copy(four_step_run, tmp_path / "run", keep_step=4)
    # What kill -9 during a save leaves: the Trainer writes trainer_state.json last.
    (run / "checkpoint-4" / "trainer_state.json").unlink()
    proc = tunelab("train", *BASE, f"output_dir={run}", "max_steps=4", "save_steps=2",
                   "resume_from_checkpoint=last", env=tunelab_env)
    assert "skipping checkpoint-4: incomplete checkpoint, no trainer_state.json" in proc.stdout
    assert "resume: from step 2 of 4, 2 steps left" in proc.stdout
    assert manifest(run)["status"] == "completed" and manifest(run)["global_step"] == 4
    assert_same_weights(four_step_run, run)
    # Each step appears once in the events although steps 3 and 4 were trained twice.
    steps = [e["step"] for e in events(run) if e["type"] == "log"]
    assert steps == [1, 2, 3, 4]


def test_a_bare_checkpoint_name_is_found_in_the_run(tmp_path, tunelab_env, four_step_run):
    run = stopped_copy(four_step_run, tmp_path / "run", keep_step=2)
    proc = tunelab("train", *BASE, f"output_dir={run}", "max_steps=6", "save_steps=2",
                   "resume_from_checkpoint=checkpoint-2", env=tunelab_env)
    assert "resume: from step 2 of 6, 4 steps left" in proc.stdout
    assert "the schedule changed since checkpoint-2 was written: total steps 4 -> 6; max_steps 4 -> 6" \
        in proc.stdout
    assert "the learning rate follows the NEW schedule" in proc.stdout
    assert manifest(run)["global_step"] == 6


def test_a_resume_with_nothing_left_to_do_is_refused(tmp_path, tunelab_env, four_step_run):
    run = stopped_copy(four_step_run, tmp_path / "run", keep_step=4)
    before = (run / "events.jsonl").read_text()
    proc = tunelab("train", *BASE, f"output_dir={run}", "max_steps=3",
                   "resume_from_checkpoint=last", env=tunelab_env, code=2)
    assert "Traceback" not in proc.stderr
    assert "checkpoint-4 is at step 4 and this recipe's schedule ends at step 3" in proc.stderr
    assert "raise max_steps" in proc.stderr and "adapter_name_or_path" in proc.stderr
    assert (run / "events.jsonl").read_text() == before  # a refused resume writes nothing
    assert manifest(run)["status"] == "completed"


def wait_for_step(run, step, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if any(e.get("type") == "log" and e["step"] >= step for e in events(run)):
                return
        except (OSError, json.JSONDecodeError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"no step {step} within {timeout}s")


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_finishes_like_an_uninterrupted_run(tmp_path, tunelab_env):
    recipe = [*BASE, "max_steps=60", "save_steps=1000", "logging_steps=1"]
    run = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "tunelab", "train", *recipe, f"output_dir={run}"],
                            cwd=ROOT, env=tunelab_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for_step(run, 3, proc)
    assert manifest(run)["pid"] == proc.pid and manifest(run)["status"] == "running"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    stopped = manifest(run)
    step = stopped["global_step"]
    assert stopped["status"] == "interrupted" and stopped["signal"] == "SIGTERM" and 3 <= step < 60
    assert [p.name for p in run.glob("checkpoint-*")] == [f"checkpoint-{step}"]
    assert (run / f"checkpoint-{step}" / "trainer_state.json").is_file()
    assert "resume_from_checkpoint=last" in stdout and "Traceback" not in stderr

    resumed = tunelab("train", *recipe, f"output_dir={run}", "resume_from_checkpoint=last",
                      env=tunelab_env)
    assert f"resume: from step {step} of 60" in resumed.stdout
    after = manifest(run)
    assert after["status"] == "completed" and after["pid"] != proc.pid
    full = tmp_path / "full"
    tunelab("train", *recipe, f"output_dir={full}", env=tunelab_env)
    assert_same_weights(full, run)
    steps = [e["step"] for e in events(run) if e["type"] == "log"]
    assert steps == list(range(1, 61))
