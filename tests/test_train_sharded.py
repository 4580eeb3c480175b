"""FSDP2 for real: `tunelab train` relaunched under torchrun with 2 CPU processes (gloo), against
one process on the same global batch, and two 'nodes' on this machine wired by the torchrun
variables users know."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tunelab.train.resume import checkpoint_problem

ROOT = Path(__file__).resolve().parents[1]
# 4 rows per optimizer step either way: 1 process x 4, or 2 processes x 2
QUICK = ["max_steps=3", "logging_steps=1", "save_steps=100", "cutoff_len=128", "max_samples=16",
         "plot_loss=false", "warmup_ratio=0"]

pytestmark = pytest.mark.slow


def tunelab(*args, env, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def log_losses(run: Path) -> list[float]:
    lines = (run / "events.jsonl").read_text().splitlines()
    return [e["loss"] for e in map(json.loads, lines) if e["type"] == "log"]


@pytest.fixture(scope="module")
def single(tmp_path_factory, tunelab_home):
    """The reference: one process, batch 4, the chunked loss, no sharding."""
    out = tmp_path_factory.mktemp("single") / "run"
    env = {**os.environ, "TUNELAB_HOME": str(tunelab_home), "HF_HUB_OFFLINE": "1"}
    env.pop("NPROC_PER_NODE", None)
    proc = tunelab("train", "examples/tiny_lora_sft.yaml", f"output_dir={out}", *QUICK,
                   "per_device_train_batch_size=4", env=env)
    assert "gradient checkpointing: off (auto: no GPU memory known" in proc.stdout
    return out


def test_fsdp2_on_two_cpu_processes_matches_one_process(single, tmp_path, tunelab_env):
    out = tmp_path / "fsdp"
    proc = tunelab("train", "examples/tiny_lora_sft.yaml", f"output_dir={out}", *QUICK,
                   "per_device_train_batch_size=2", "fsdp=full_shard auto_wrap",
                   env={**tunelab_env, "NPROC_PER_NODE": "2"})
    assert "engine: fsdp2 over 2 processes" in proc.stdout
    assert json.loads((out / "manifest.json").read_text())["status"] == "completed"
    reference = log_losses(single)
    assert len(reference) == 3 and log_losses(out) == pytest.approx(reference, rel=1e-5)
    # the adapter saved from sharded parameters is the whole adapter, with the same weights
    ours, theirs = load_file(out / "adapter_model.safetensors"), load_file(single / "adapter_model.safetensors")
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key], rtol=1e-4, atol=1e-5, msg=key)
    assert checkpoint_problem(out / "checkpoint-3") is None  # an FSDP checkpoint resumes
    _reloads_like(out, single)


def _reloads_like(run: Path, reference: Path) -> None:
    """The run folder loads as base + adapter and gives the reference run's logits."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tunelab.testing import builtin_model_path

    ids = torch.tensor([[1, 5, 9, 33, 70, 2]])
    logits = []
    for folder in (run, reference):
        base = AutoModelForCausalLM.from_pretrained(builtin_model_path("tunelab/tiny-chat"))
        with torch.no_grad():
            logits.append(PeftModel.from_pretrained(base, folder).eval()(ids).logits)
    torch.testing.assert_close(logits[0], logits[1], rtol=1e-4, atol=1e-5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_nodes_from_the_torchrun_variables(single, tmp_path, tunelab_env):
    """NNODES=2 with one process per node: two `tunelab train` commands, as on two machines."""
    out = tmp_path / "two-nodes"
    common = {**tunelab_env, "NNODES": "2", "NPROC_PER_NODE": "1", "MASTER_ADDR": "127.0.0.1",
              "MASTER_PORT": str(_free_port())}
    command = [sys.executable, "-m", "tunelab", "train", "examples/tiny_lora_sft.yaml",
               f"output_dir={out}", *QUICK, "per_device_train_batch_size=2"]
    nodes = [subprocess.Popen(command, cwd=ROOT, env={**common, "NODE_RANK": str(rank)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "on each of 2 nodes (this is node 1)" in outputs[1]
    assert "--nnodes 2 --node_rank 1" in outputs[1]
    assert "x 2 (devices)" in outputs[0] and "engine: ddp over 2 processes" in outputs[0]
    assert log_losses(out) == pytest.approx(log_losses(single), rel=1e-5)
