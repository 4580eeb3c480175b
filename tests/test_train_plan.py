"""The printed step plan equals what Hugging Face Trainer runs: in-process against a plain
Trainer, and through the real CLI (accumulation, packing, two-process DDP)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tunelab.train.plan import plan_steps

ROOT = Path(__file__).resolve().parents[1]


class Scalar(torch.nn.Module):
    """The smallest model a Trainer accepts: one weight, loss = (w * x)^2."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x, labels=None):
        return {"loss": (self.w * x).pow(2).mean()}


def hf_trainer_steps(tmp_path, rows, batch, accum, epochs, max_steps, drop_last):
    """Optimizer steps a plain HF Trainer runs: the independent reference."""
    from transformers import Trainer, TrainingArguments

    data = [{"x": torch.tensor([float(i + 1)])} for i in range(rows)]
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=batch,
                             gradient_accumulation_steps=accum, num_train_epochs=epochs,
                             max_steps=max_steps, dataloader_drop_last=drop_last, use_cpu=True,
                             report_to="none", save_strategy="no", logging_strategy="no",
                             learning_rate=1e-3, disable_tqdm=True)
    trainer = Trainer(model=Scalar(), args=args, train_dataset=data)
    trainer.train()
    return trainer.state.global_step, trainer.state.max_steps


CASES = [  # rows, batch, accumulation, epochs, max_steps, drop_last
    (36, 4, 8, 1, -1, False),   # the case: 9 batches / 8 -> 2 steps, not 1
    (36, 4, 1, 1, -1, False),
    (37, 4, 2, 3, -1, False),
    (10, 3, 4, 2.5, -1, False),
    (50, 4, 3, 1, -1, True),
    (20, 4, 8, 1, -1, False),   # fewer batches than accumulation: still one step
    (36, 4, 8, 1, 7, False),    # max_steps wins over epochs
    (7, 2, 3, 0.5, -1, False),
]


@pytest.mark.parametrize("rows,batch,accum,epochs,max_steps,drop_last", CASES)
def test_plan_matches_a_plain_trainer(tmp_path, rows, batch, accum, epochs, max_steps, drop_last):
    ran, scheduled = hf_trainer_steps(tmp_path, rows, batch, accum, epochs, max_steps, drop_last)
    plan = plan_steps(samples=rows, rows=rows, batch_size=batch, grad_accum=accum, world_size=1,
                      epochs=epochs, max_steps=max_steps, drop_last=drop_last)
    assert plan.total_steps == ran == scheduled


def test_plan_explains_the_rounding():
    plan = plan_steps(samples=36, rows=36, batch_size=4, grad_accum=8, world_size=1, epochs=1,
                      max_steps=-1)
    text = plan.describe()
    assert "steps per epoch: 2 (9 batches per device / 8, rounded up" in text
    assert "accumulates 1 batch)" in text and "total steps: 2" in text


def tunelab(*args, env):
    proc = subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def printed_and_run(proc, out):
    printed = int(re.search(r"^total steps: (\d+)", proc.stdout, re.M).group(1))
    manifest = json.loads((out / "manifest.json").read_text())
    logged = [e["step"] for e in map(json.loads, (out / "events.jsonl").read_text().splitlines())
              if e["type"] == "log"]
    return printed, manifest["global_step"], logged


CLI_CASES = {
    "accumulation": (["dataset=alpaca_zh_demo", "max_samples=36", "gradient_accumulation_steps=8",
                      "num_train_epochs=1"], {}),
    "packing": (["packing=true", "max_samples=40", "cutoff_len=256", "gradient_accumulation_steps=2",
                 "num_train_epochs=2"], {}),
    "ddp": (["max_samples=21", "gradient_accumulation_steps=4", "num_train_epochs=1",
             "per_device_train_batch_size=2"], {"NPROC_PER_NODE": "2"}),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CLI_CASES))
def test_printed_total_is_the_steps_run(tmp_path, tunelab_env, case):
    overrides, extra_env = CLI_CASES[case]
    out = tmp_path / "run"
    proc = tunelab("train", "examples/tiny_lora_sft.yaml", f"output_dir={out}", "logging_steps=1",
                   "save_steps=1000", "per_device_train_batch_size=4", "cutoff_len=128",
                   "plot_loss=false", *overrides, env={**tunelab_env, **extra_env})
    printed, ran, logged = printed_and_run(proc, out)
    assert printed == ran == len(logged) == logged[-1], (printed, ran, logged)
    if case == "packing":
        assert "packed into" in proc.stdout
    if case == "ddp":
        assert "x 2 (devices)" in proc.stdout
