"""stage: grpo through the real CLI: the tiny model learns what a reward of the user's own asks
for, QLoRA trains on the arithmetic demo with the step count the plan printed, and rows a reward
cannot score are named by file and row in `tunelab train` and `tunelab data validate`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The reward module a user writes: the share of digits in the answer (the task: answer with a
# number), counting its calls in a file so the test sees that TRL called it.
DIGITS_MODULE = '''
import os


def numeric_share(completions, **kwargs):
    with open(os.environ["REWARD_CALLS"], "a") as calls:
        calls.write(f"{len(completions)}\\n")
    texts = [completion[-1]["content"] for completion in completions]
    return [sum(ch.isdigit() for ch in text) / max(len(text), 1) for text in texts]
'''
BAD_ROWS = [{"question": "What is 2 + 2?", "answer": "4"}, {"question": "What is 3 + 3?"},
            {"question": "What is 5 + 1?", "answer": "6"}]


def tunelab(*args, env, cwd=ROOT, check=True):
    proc = subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env={**env, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"},
                          cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"tunelab {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def logs(run_dir: Path) -> list[dict]:
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return [e for e in events if e["type"] in ("log", "train_begin")]


@pytest.fixture(scope="module")
def bad_rows_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("grpo-data")
    (folder / "bad.json").write_text(json.dumps(BAD_ROWS))
    (folder / "dataset_info.json").write_text(json.dumps(
        {"bad_rows": {"file_name": "bad.json", "columns": {"prompt": "question"}}}))
    return folder


@pytest.mark.slow
def test_grpo_learns_what_a_custom_reward_asks_for(tmp_path, tunelab_env):
    (tmp_path / "digit_reward.py").write_text(DIGITS_MODULE)
    calls = tmp_path / "calls.txt"
    env = {**tunelab_env, "PYTHONPATH": f"{tunelab_env.get('PYTHONPATH', '')}{os.pathsep}{tmp_path}",
           "REWARD_CALLS": str(calls)}
    out = tmp_path / "run"
    proc = tunelab("train", "model_name_or_path=tunelab/tiny-chat", "stage=grpo", "finetuning_type=lora",
                   "lora_target=all", "additional_target=embed_tokens,lm_head", "dataset=grpo_math_demo",
                   "reward_funcs=format,digit_reward:numeric_share", "num_generations=4",
                   "max_completion_length=8", "per_device_train_batch_size=8", "learning_rate=3e-2",
                   "max_steps=30", "logging_steps=5", "temperature=1.0", "top_p=1.0", "top_k=0",
                   "save_steps=1000", f"output_dir={out}", env=env)
    assert "= 8 completions per step = 2 prompts x 4 generations" in proc.stdout
    assert "total steps: 30" in proc.stdout and "reward=" in proc.stderr  # the progress line
    first, *_, last = [e for e in logs(out) if e["type"] == "log"]
    share = "rewards/numeric_share/mean"
    # A random model writes ~1% digits; the policy learns to answer in digits.
    assert first["metrics"][share] < 0.1 and last["metrics"][share] > 0.5, (first, last)
    assert last["metrics"]["rewards/format/mean"] == 0.0  # logged per function
    assert "kl" not in last["metrics"]  # grpo_beta 0: no reference, as the log says
    assert "no reference model" in proc.stdout
    assert calls.read_text().split() == ["8"] * 30  # one call per step, 8 completions each
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["stage"] == "grpo"
    assert (out / "adapter_model.safetensors").is_file() and not (out / "ref").exists()


@pytest.mark.slow
def test_qlora_grpo_on_the_demo_names_a_row_without_answer(tmp_path, tunelab_env, bad_rows_dir):
    out = tmp_path / "run"
    proc = tunelab("train", "model_name_or_path=tunelab/tiny-chat", "stage=grpo", "finetuning_type=lora",
                   "quantization_bit=4", "dataset=grpo_math_demo,bad_rows", f"dataset_dir={bad_rows_dir}",
                   "max_samples=9", "reward_funcs=accuracy,length", "num_generations=2",
                   "per_device_train_batch_size=4", "max_completion_length=8", "grpo_beta=0.04",
                   "num_train_epochs=1", "logging_steps=1", "save_steps=1000", f"output_dir={out}",
                   env=tunelab_env)
    assert "bad.json:2: no answer: the accuracy reward compares" in proc.stdout
    # 9 demo prompts + 2 good rows = 11; a step takes 4 completions / 2 generations = 2 prompts.
    assert "steps per epoch: 5 (11 prompts / 2 per step; the last 1 of each shuffled epoch" in proc.stdout
    events = logs(out)
    assert events[0]["total_steps"] == 5 and [e["step"] for e in events[1:]] == [1, 2, 3, 4, 5]
    assert all({"rewards/accuracy/mean", "rewards/length/mean", "kl", "completions/mean_length"}
               <= set(e["metrics"]) for e in events[1:])
    assert "the reference is the base model with the adapter disabled" in proc.stdout
    assert json.loads((out / "manifest.json").read_text())["status"] == "completed"
    assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "LORA"


def test_data_validate_names_a_row_the_reward_cannot_score(tunelab_env, bad_rows_dir):
    proc = tunelab("data", "validate", "bad_rows", "--dataset-dir", bad_rows_dir, "--stage", "grpo",
                   "reward_funcs=accuracy", env=tunelab_env, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"bad_rows: 2/3 rows usable, 1 skipped\n  \S*bad\.json:2: no answer: the "
                     r"accuracy reward compares each completion's final answer with it", proc.stdout)
    ok = tunelab("data", "validate", "bad_rows", "--dataset-dir", bad_rows_dir, "--stage", "grpo",
                 "reward_funcs=format", env=tunelab_env)  # format reads no column
    assert "all rows are usable" in ok.stdout


def test_a_reward_module_that_does_not_import_stops_before_the_run(tmp_path):
    from tunelab.config import load_config
    from tunelab.errors import ConfigError
    from tunelab.train.workflow import run_training

    out = tmp_path / "run"
    cfg = load_config(None, ["model_name_or_path=tunelab/tiny-chat", "stage=grpo", "dataset=grpo_math_demo",
                             "reward_funcs=accuracy,no_such_module:score", f"output_dir={out}"])
    with pytest.raises(ConfigError, match="reward function 'no_such_module:score': no module named "
                                          "'no_such_module'"):
        run_training(cfg)
    assert not out.exists()  # a recipe that cannot train writes nothing
