"""Memory and time estimate: exact parameter counts, component formulas, advice, and the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunelab.config import load_config
from tunelab.errors import ModelError
from tunelab.cli.format_estimate import format_estimate
from tunelab.estimate import (
    detect_device_memory,
    estimate_memory,
    explain_oom,
    is_oom_error,
    parse_size,
)
from tunelab.estimate.parts import GIB
from tunelab.estimate.timing import calibrate, estimate_time, match_device

GB = 1024**3

# Shapes of well-known checkpoints, written here so nothing is downloaded.
LLAMA2_7B = dict(model_type="llama", vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                 num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                 tie_word_embeddings=False)
QWEN2_05B = dict(model_type="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864,
                 num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                 tie_word_embeddings=True)
GEMMA_2B = dict(model_type="gemma", vocab_size=256000, hidden_size=2048, intermediate_size=16384,
                num_hidden_layers=18, num_attention_heads=8, num_key_value_heads=1, head_dim=256,
                tie_word_embeddings=True)
MISTRAL_7B = dict(model_type="mistral", vocab_size=32000, hidden_size=4096, intermediate_size=14336,
                  num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                  tie_word_embeddings=False)
LLAMA_70B = dict(LLAMA2_7B, vocab_size=128256, hidden_size=8192, intermediate_size=28672,
                 num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8)


def hand_count(c: dict, qkv_bias: bool = False) -> int:
    """Decoder-only parameter count: embeddings, L x (attention + SwiGLU MLP + 2 norms), final
    norm, and an untied head."""
    h, i, layers, vocab = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    head_dim = c.get("head_dim", h // c["num_attention_heads"])
    q, kv = c["num_attention_heads"] * head_dim, c["num_key_value_heads"] * head_dim
    attention = h * q + 2 * h * kv + q * h + ((q + 2 * kv) if qkv_bias else 0)
    layer = attention + 3 * h * i + 2 * h
    head = 0 if c["tie_word_embeddings"] else vocab * h
    return vocab * h + layers * layer + h + head


def hand_lora(c: dict, rank: int) -> int:
    """rank x (in + out) for q, k, v, o, gate, up, down in every layer."""
    h, i, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    head_dim = c.get("head_dim", h // c["num_attention_heads"])
    q, kv = c["num_attention_heads"] * head_dim, c["num_key_value_heads"] * head_dim
    return layers * rank * (2 * (h + q) + 2 * (h + kv) + 3 * (h + i))


def write_config(folder: Path, config: dict) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def recipe(folder: str, **keys) -> object:
    return load_config(None, {"model_name_or_path": folder, **keys})


@pytest.fixture(scope="module")
def llama7b(tmp_path_factory) -> str:
    return write_config(tmp_path_factory.mktemp("llama7b"), LLAMA2_7B)


@pytest.fixture(scope="module")
def llama70b(tmp_path_factory) -> str:
    return write_config(tmp_path_factory.mktemp("llama70b"), LLAMA_70B)


@pytest.mark.parametrize("config, qkv_bias, known", [
    (LLAMA2_7B, False, 6_738_415_616),
    (QWEN2_05B, True, 494_032_768),
    (GEMMA_2B, False, 2_506_172_416),
    (MISTRAL_7B, False, 7_241_732_096),
], ids=["llama2-7b", "qwen2-0.5b", "gemma-2b", "mistral-7b"])
def test_parameter_counts_are_exact(tmp_path, config, qkv_bias, known):
    folder = write_config(tmp_path / config["model_type"], config)
    est = estimate_memory(recipe(folder, finetuning_type="full", bf16=True))
    assert est.total_params == hand_count(config, qkv_bias) == known
    assert est.trainable_params == known
    # full bf16 training: 2 B weights, 2 B gradients, two 2 B AdamW states per parameter
    assert est.weights == 2 * known and est.gradients == 2 * known and est.optimizer == 4 * known


@pytest.mark.parametrize("config", [LLAMA2_7B, MISTRAL_7B, GEMMA_2B], ids=["llama", "mistral", "gemma"])
def test_lora_rank8_all_linear_matches_hand_sum(tmp_path, config):
    folder = write_config(tmp_path / "m", config)
    est = estimate_memory(recipe(folder, lora_rank=8, lora_target="all"))
    assert est.trainable_params == hand_lora(config, 8)
    assert est.adapter == est.gradients == 4 * est.trainable_params  # PEFT keeps adapters in fp32
    assert est.optimizer == 8 * est.trainable_params


def test_lora_named_targets_and_dora(llama7b):
    c = LLAMA2_7B
    h, layers = c["hidden_size"], c["num_hidden_layers"]
    qv = estimate_memory(recipe(llama7b, lora_rank=16, lora_target="q_proj,v_proj"))
    assert qv.trainable_params == layers * 16 * (2 * h + 2 * h)
    dora = estimate_memory(recipe(llama7b, lora_rank=16, lora_target="q_proj,v_proj", use_dora=True))
    assert dora.trainable_params == qv.trainable_params + layers * 2 * h  # magnitude per output


def test_freeze_trains_the_last_layers(llama7b):
    est = estimate_memory(recipe(llama7b, finetuning_type="freeze", freeze_trainable_layers=2))
    per_layer = (hand_count(LLAMA2_7B) - 2 * 32000 * 4096 - 4096) // 32
    assert est.trainable_params == 2 * per_layer


def test_activations_scale_with_batch_and_checkpointing(llama7b):
    one = estimate_memory(recipe(llama7b, per_device_train_batch_size=1))
    two = estimate_memory(recipe(llama7b, per_device_train_batch_size=2))
    assert two.activations == 2 * one.activations
    assert two.logits == one.logits  # the chunked loss holds one chunk of logits at a time
    whole = [estimate_memory(recipe(llama7b, per_device_train_batch_size=b, chunked_loss=False)) for b in (1, 2)]
    assert whole[1].logits == 2 * whole[0].logits > two.logits
    ckpt = estimate_memory(recipe(llama7b, per_device_train_batch_size=1, gradient_checkpointing=True))
    assert ckpt.activations < one.activations / 5
    eager = estimate_memory(recipe(llama7b, per_device_train_batch_size=1, flash_attn="eager"))
    assert eager.activations > one.activations


def test_seventy_b_on_24gb_does_not_fit_and_advice_is_smaller(llama70b):
    est = estimate_memory(recipe(llama70b), gpu_memory_bytes=parse_size("24GB"))
    assert est.total_params == hand_count(LLAMA_70B)
    assert est.fits is False and est.suggestions
    assert all(s.total < est.total for s in est.suggestions)
    text = format_estimate(est)
    assert "does NOT fit" in text and "not yet measured on a GPU" in text


def test_fits_and_sharding(llama7b):
    small = estimate_memory(recipe(llama7b, quantization_bit=4, per_device_train_batch_size=1,
                                   gradient_checkpointing=True), gpu_memory_bytes=24 * GB)
    assert small.fits is True and small.suggestions == []
    full = recipe(llama7b, finetuning_type="full", bf16=True,
                  deepspeed={"zero_optimization": {"stage": 3}})
    one, four = estimate_memory(full, num_gpus=1), estimate_memory(full, num_gpus=4)
    assert four.weights == one.weights // 4 and four.optimizer == one.optimizer // 4
    assert one.optimizer == 12 * one.total_params  # fp32 master + two fp32 states


def test_estimate_is_fast(tmp_path):
    folder = write_config(tmp_path / "fresh", dict(MISTRAL_7B, vocab_size=32001))
    cfg = recipe(folder)
    start = time.perf_counter()
    estimate_memory(cfg, gpu_memory_bytes=8 * GB)  # counts on the meta device, then suggests
    assert time.perf_counter() - start < 1.5


@pytest.mark.parametrize("text, expected", [
    ("24GB", 24 * GB), ("1.5GiB", int(1.5 * GB)), ("500MB", 500 * 1024**2), (24, 24 * GB),
    ("80", 80 * GB), ("16 gb", 16 * GB), ("2T", 2 * 1024**4), (0.5, GB // 2),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["lots", "24XB", "-3GB", "0", "", "GB"])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_explain_oom_names_step_peak_estimate_and_recipe_keys(llama7b):
    import torch

    # checkpointing off as asked (auto would have turned it on for this GPU)
    est = estimate_memory(recipe(llama7b, gradient_checkpointing=False), gpu_memory_bytes=24 * GB)
    exc = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert is_oom_error(exc)
    assert is_oom_error(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"))
    assert not is_oom_error(ValueError("bad value"))
    assert not is_oom_error(RuntimeError("shape mismatch"))
    text = explain_oom(exc, step=17, estimate=est, peak_bytes=int(23.5 * GB))
    assert "step 17" in text and "23.5 GiB" in text and f"{est.total / GIB:.1f} GiB" in text
    # 8 x 2048 tokens of a 7B model: activations dominate, so checkpointing is the first lever
    assert "- gradient_checkpointing=true:" in text
    assert not re.search(r"(^|\s)--[a-z]", text)  # recipe keys, never command-line flags


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-GPU answer")
def test_no_gpu_means_no_device_memory():
    assert detect_device_memory() is None


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs an NVIDIA GPU")
def test_device_memory_is_the_cards_total():
    import torch

    assert detect_device_memory() == torch.cuda.mem_get_info(0)[1]


def test_step_counts_and_device_names(llama7b):
    est = estimate_memory(recipe(llama7b, max_steps=0))
    timing = estimate_time(est.plan, est.shape, flops_per_second=1e14, source="test", epochs=2,
                           samples=1000)
    assert timing.total_steps == 2 * 125  # 1000 samples / batch 8 (the recipe default), 2 epochs
    assert match_device("NVIDIA A100-SXM4-40GB") == "A100-40GB"
    assert match_device("NVIDIA GeForce RTX 4090") == "RTX 4090"
    assert match_device("NVIDIA H100 80GB HBM3") == "H100"
    assert match_device("Intel Arc A770") is None


def test_calibration_runs_on_cpu(tmp_path):
    from transformers import AutoConfig

    tiny = dict(LLAMA2_7B, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=4, vocab_size=256)
    folder = write_config(tmp_path / "tiny", tiny)
    est = estimate_memory(recipe(folder, cutoff_len=32, per_device_train_batch_size=2))
    rate, how = calibrate(AutoConfig.from_pretrained(folder), est.plan, steps=1, device="cpu")
    assert rate > 0 and "calibrated on cpu" in how


def test_hub_id_offline_is_a_clear_model_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as info:
        estimate_memory(recipe("nobody-here/not-a-model"))
    assert "download its config.json" in str(info.value)


def test_builtin_model_resolves():
    from transformers import AutoModelForCausalLM

    from tunelab.testing import builtin_model_path

    est = estimate_memory(recipe("tunelab/tiny-chat", finetuning_type="full"))
    model = AutoModelForCausalLM.from_pretrained(builtin_model_path("tunelab/tiny-chat"))
    assert est.total_params == est.trainable_params == sum(p.numel() for p in model.parameters())


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "tunelab", "estimate", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_prints_breakdown(llama7b, tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(f"model_name_or_path: {llama7b}\nfinetuning_type: lora\ncutoff_len: 1024\n")
    # 5000 rows / batch 2 x 3 epochs (the default) = 7,500 steps
    done = _cli(str(path), "per_device_train_batch_size=2", "--gpu-memory", "24GB", "--gpu", "A100-80GB",
                "--samples", "5000")
    assert done.returncode == 0, done.stderr
    for word in ("weights", "activations", "optimizer state", "logits", "total peak", "fits",
                 "s per optimizer step", "not yet measured on a GPU", "7,500 steps"):
        assert word in done.stdout
    as_json = _cli(str(path), "--gpu-memory", "8GB", "--json")
    payload = json.loads(as_json.stdout)
    assert payload["fits"] is False and payload["suggestions"]


def test_cli_bad_gpu_memory_is_a_clear_error(llama7b):
    done = _cli(f"model_name_or_path={llama7b}", "--gpu-memory", "lots")
    assert done.returncode == 2
    assert "--gpu-memory" in done.stderr and "Traceback" not in done.stderr


def test_loss_chunk_matches_the_trainer():
    """The estimate prices one chunk of logits; the chunk must be the one the loss uses."""
    import inspect

    from tunelab.estimate.activations import LOSS_CHUNK_TOKENS
    from tunelab.train.loss import chunked_loss_sum

    default = inspect.signature(chunked_loss_sum).parameters["chunk_tokens"].default
    assert LOSS_CHUNK_TOKENS == default
