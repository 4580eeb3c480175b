"""The sharded paths that need NVIDIA GPUs (and DeepSpeed): ZeRO-3 + LoRA and + QLoRA train and
save the whole adapter (gathered from the shards), and it reloads to the same logits; FSDP2 on
GPUs matches one process. Skipped here (no GPU, no DeepSpeed); ready for a CUDA machine."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["max_steps=3", "logging_steps=1", "save_steps=100", "cutoff_len=128", "max_samples=16",
         "plot_loss=false", "warmup_ratio=0", "additional_target=null"]
GPUS = torch.cuda.device_count()

pytestmark = [
    pytest.mark.cuda, pytest.mark.slow,
    pytest.mark.skipif(GPUS < 1, reason="needs an NVIDIA GPU"),
]
needs_deepspeed = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                                     reason="needs DeepSpeed (pip install deepspeed)")


def train(out: Path, *keys: str, nproc: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "NPROC_PER_NODE": str(nproc), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "tunelab", "train", "examples/tiny_lora_sft.yaml",
                           f"output_dir={out}", *QUICK, *keys], capture_output=True, text=True,
                          timeout=900, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def losses(run: Path) -> list[float]:
    events = map(json.loads, (run / "events.jsonl").read_text().splitlines())
    return [e["loss"] for e in events if e["type"] == "log"]


def expected_shapes(run: Path) -> dict[str, tuple[int, ...]]:
    """LoRA A is (r, in), B is (out, r) for every targeted linear of the base (by hand)."""
    from transformers import AutoModelForCausalLM

    from tunelab.testing import builtin_model_path

    rank = json.loads((run / "adapter_config.json").read_text())["r"]
    base = AutoModelForCausalLM.from_pretrained(builtin_model_path("tunelab/tiny-chat"))
    shapes = {}
    for name, module in base.named_modules():
        if isinstance(module, torch.nn.Linear) and "lm_head" not in name:
            shapes[f"{name}.lora_A.weight"] = (rank, module.in_features)
            shapes[f"{name}.lora_B.weight"] = (module.out_features, rank)
    return shapes


def assert_whole_adapter(run: Path, reference: Path) -> None:
    saved = load_file(run / "adapter_model.safetensors")
    want = expected_shapes(run)
    got = {k.removeprefix("base_model.model."): tuple(v.shape) for k, v in saved.items()}
    assert got == want  # no empty ZeRO-3 partitions: every tensor gathered in full
    ref = load_file(reference / "adapter_model.safetensors")
    for key in saved:
        torch.testing.assert_close(saved[key].float(), ref[key].float(), rtol=2e-2, atol=2e-3)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "run"
    train(out, "per_device_train_batch_size=4", "bf16=true", nproc=1)
    return out


@needs_deepspeed
@pytest.mark.parametrize("quantized", [False, True], ids=["lora", "qlora"])
def test_zero3_lora_saves_the_gathered_adapter(single, tmp_path, quantized):
    nproc = 2 if GPUS >= 2 else 1
    out = tmp_path / "zero3"
    keys = ["deepspeed=examples/deepspeed/ds_z3.json", "bf16=true",
            f"per_device_train_batch_size={4 // nproc}"]
    proc = train(out, *keys, *(["quantization_bit=4"] if quantized else []), nproc=nproc)
    assert "engine: deepspeed" in proc.stdout or nproc == 1
    if not quantized:
        assert losses(out) == pytest.approx(losses(single), rel=2e-2)
        assert_whole_adapter(out, single)
    else:
        saved = load_file(out / "adapter_model.safetensors")
        assert {k.removeprefix("base_model.model.") for k in saved} == set(expected_shapes(out))
        assert all(v.numel() > 0 for v in saved.values())


@pytest.mark.skipif(GPUS < 2, reason="needs 2 GPUs")
def test_fsdp2_on_two_gpus_matches_one(single, tmp_path):
    out = tmp_path / "fsdp"
    proc = train(out, "fsdp=full_shard auto_wrap", "bf16=true", "per_device_train_batch_size=2", nproc=2)
    assert "engine: fsdp2 over 2 processes" in proc.stdout
    assert losses(out) == pytest.approx(losses(single), rel=2e-2)
    assert_whole_adapter(out, single)
