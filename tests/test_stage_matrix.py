"""The post-training stages beyond each one's own tests: kto and grpo with DoRA, freeze and full
(their own tests cover LoRA and QLoRA; rm's and dpo's cover every method), and a stopped rm, kto,
grpo or rloo run resumed from its last checkpoint repeats the uninterrupted run step for step.

Real `tunelab train` subprocesses on the tiny model; the uninterrupted run is the reference."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["max_samples=16", "max_steps=4", "save_steps=2", "logging_steps=1", "plot_loss=false",
         "per_device_train_batch_size=4", "lr_scheduler_type=constant", "warmup_ratio=0",
         "cutoff_len=96", "dataloader_num_workers=0"]
STAGES = {
    "rm": ["examples/tiny_lora_rm.yaml"],
    "kto": ["examples/tiny_lora_kto.yaml"],
    "grpo": ["examples/tiny_lora_grpo.yaml", "num_generations=4", "max_completion_length=8"],
    "rloo": ["examples/tiny_lora_rloo.yaml", "num_generations=4", "max_completion_length=8"],
}
# The number each stage's trainer logs besides the loss (under the event's "metrics").
OWN_METRIC = {"rm": "accuracy", "kto": "kl", "grpo": "reward", "rloo": "reward"}
TIMING = ("time", "per_second", "num_tokens", "input_tokens")
METHODS = {"dora": ["use_dora=true"], "freeze": ["finetuning_type=freeze", "freeze_trainable_layers=1"],
           "full": ["finetuning_type=full", "learning_rate=1e-4"]}


def tunelab(*args, env) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd=ROOT,
                          env={**env, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def train(stage: str, out: Path, env, *extra: str) -> subprocess.CompletedProcess:
    recipe, *keys = STAGES[stage]
    return tunelab("train", recipe, *keys, *SHORT, f"output_dir={out}", *extra, env=env)


def log_events(run: Path) -> list[dict]:
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    return [e for e in events if e["type"] == "log"]


def saved_weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(run.glob("*.safetensors"))
    assert files, f"no weights saved in {run}"
    return {k: v for f in files for k, v in load_file(f).items()}


@pytest.mark.slow
@pytest.mark.parametrize("stage,method", [("kto", "dora"), ("kto", "freeze"), ("kto", "full"),
                                          ("grpo", "dora"), ("grpo", "freeze"), ("grpo", "full")])
def test_each_method_trains_the_stage(stage, method, tmp_path, tunelab_env):
    out = tmp_path / "run"
    proc = train(stage, out, tunelab_env, *METHODS[method])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["stage"] == stage
    assert manifest["config_resolved"]["finetuning_type"] == ("lora" if method == "dora" else method)
    events = log_events(out)
    assert [e["step"] for e in events] == [1, 2, 3, 4]
    assert all(OWN_METRIC[stage] in e["metrics"] for e in events), events[-1]
    weights = saved_weights(out)
    if method == "dora":  # DoRA's magnitude vectors are saved beside the LoRA matrices
        assert any("lora_magnitude_vector" in k for k in weights) and (out / "adapter_config.json").is_file()
    else:  # a whole model: loadable by `tunelab chat` like any sft run
        assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
        assert "trainable" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["rm", "kto", "grpo", "rloo"])
def test_resume_from_the_last_checkpoint_repeats_the_uninterrupted_run(stage, tmp_path, tunelab_env):
    full = tmp_path / "full"
    train(stage, full, tunelab_env)
    stopped = tmp_path / "stopped"  # the run as a crash after step 2's checkpoint leaves it
    shutil.copytree(full, stopped)
    shutil.rmtree(stopped / "checkpoint-4")
    for weights in stopped.glob("*.safetensors"):
        weights.unlink()
    proc = train(stage, stopped, tunelab_env, "resume_from_checkpoint=last")
    assert "resuming THIS run from" in proc.stdout and "checkpoint-2" in proc.stdout
    resumed, reference = log_events(stopped), log_events(full)
    assert [e["step"] for e in resumed] == [e["step"] for e in reference] == [1, 2, 3, 4]
    for a, b in zip(resumed[2:], reference[2:]):  # the steps trained after the resume
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6), (stage, a, b)
        assert OWN_METRIC[stage] in a["metrics"]
        for name in set(a["metrics"]) & set(b["metrics"]):  # TRL's numbers, timings aside
            if not any(word in name for word in TIMING):
                assert a["metrics"][name] == pytest.approx(b["metrics"][name], rel=1e-4, abs=1e-6), name
    a, b = saved_weights(full), saved_weights(stopped)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6)
