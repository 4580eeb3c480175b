"""The estimate prices what `tunelab train` runs: the chunked loss in every launch mode, FSDP like
the ZeRO stage it matches, gradient_checkpointing auto / offload. Expected figures are worked by
hand from the model's shape."""

from __future__ import annotations

import json

import pytest

from test_estimate import hand_count, recipe, write_config
from tunelab.estimate import estimate_memory

GIB = 1024**3
# Llama-3-8B's shape: the 8B QLoRA at 2048 tokens on a 24 GB card
LLAMA3_8B = dict(model_type="llama", vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                 num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                 tie_word_embeddings=False)
QLORA = dict(quantization_bit=4, cutoff_len=2048, per_device_train_batch_size=1, bf16=True)


@pytest.fixture(scope="module")
def llama8b(tmp_path_factory) -> str:
    return write_config(tmp_path_factory.mktemp("llama8b"), LLAMA3_8B)


def test_logits_are_one_loss_chunk_wherever_the_chunked_loss_runs(llama8b):
    chunk = 1024 * 128256 * 12  # tokens x vocab x (fp32 logits + log-softmax + gradient)
    whole = 2048 * 128256 * 12
    assert estimate_memory(recipe(llama8b, **QLORA)).logits == chunk
    # DDP and FSDP run the same chunked loss (inside the wrapped model's call)
    assert estimate_memory(recipe(llama8b, **QLORA), num_gpus=2).logits == chunk
    fsdp = recipe(llama8b, finetuning_type="full", cutoff_len=2048, fsdp="full_shard auto_wrap")
    assert estimate_memory(fsdp, num_gpus=4).logits == chunk
    # DeepSpeed and chunked_loss: false keep the model's own loss; Liger builds no logits either
    ds = recipe(llama8b, **QLORA, deepspeed={"zero_optimization": {"stage": 2}})
    assert estimate_memory(ds, num_gpus=2).logits == whole
    assert estimate_memory(recipe(llama8b, **QLORA, chunked_loss=False)).logits == whole
    assert estimate_memory(recipe(llama8b, **QLORA, chunked_loss=False, use_liger_kernel=True)).logits == chunk


def test_fsdp_shards_like_the_zero_stage_it_matches(llama8b):
    params = hand_count(LLAMA3_8B)
    full = dict(finetuning_type="full", bf16=True, cutoff_len=512, gradient_checkpointing=True)
    sharded = estimate_memory(recipe(llama8b, **full, fsdp="full_shard auto_wrap"), num_gpus=4)
    assert sharded.weights == params * 2 // 4 and sharded.gradients == params * 2 // 4
    assert sharded.optimizer == params * 12 // 4  # fp32 master + two fp32 Adam states, sharded
    assert "FSDP2 full_shard sharded over 4 GPU(s)" in sharded.details["optimizer"]
    zero3 = estimate_memory(recipe(llama8b, **full, deepspeed={"zero_optimization": {"stage": 3}}),
                            num_gpus=4)
    assert (zero3.weights, zero3.gradients, zero3.optimizer) == (
        sharded.weights, sharded.gradients, sharded.optimizer)
    grad_op = estimate_memory(recipe(llama8b, **full, fsdp="shard_grad_op"), num_gpus=4)
    assert grad_op.weights == params * 2 and grad_op.gradients == params * 2 // 4
    offload = estimate_memory(recipe(llama8b, **full, fsdp="full_shard offload"), num_gpus=4)
    assert offload.weights == 0 and offload.optimizer == 0


def test_checkpointing_auto_turns_on_only_when_the_step_does_not_fit(llama8b):
    on = estimate_memory(recipe(llama8b, **QLORA, gradient_checkpointing=True), gpu_memory_bytes=24 * GIB)
    off = estimate_memory(recipe(llama8b, **QLORA, gradient_checkpointing=False), gpu_memory_bytes=24 * GIB)
    assert off.fits is False and on.fits is True  # the case: 8B QLoRA, 2048 tokens, 24 GB
    auto = estimate_memory(recipe(llama8b, **QLORA), gpu_memory_bytes=24 * GIB)  # auto is the default
    assert auto.activations == on.activations and auto.fits is True
    assert auto.notes[0] == (f"gradient checkpointing: on (auto: without it the step needs "
                             f"{off.total / GIB:.2f} GiB, more than the 24.00 GiB of the GPU)")
    roomy = estimate_memory(recipe(llama8b, **QLORA), gpu_memory_bytes=80 * GIB)
    assert roomy.activations == off.activations and roomy.notes[0].startswith("gradient checkpointing: off (auto")
    cpu = estimate_memory(recipe(llama8b, **QLORA))
    assert cpu.activations == off.activations and "no GPU memory known" in cpu.notes[0]
    # LLaMA-Factory's switches
    assert estimate_memory(recipe(llama8b, **QLORA, disable_gradient_checkpointing=True),
                           gpu_memory_bytes=24 * GIB).activations == off.activations
    unsloth = estimate_memory(recipe(llama8b, **QLORA, use_unsloth_gc=True))
    assert unsloth.activations < on.activations


def test_offloaded_checkpointing_moves_the_layer_inputs_off_the_gpu(llama8b):
    on = estimate_memory(recipe(llama8b, **QLORA, gradient_checkpointing=True))
    offload = estimate_memory(recipe(llama8b, **QLORA, gradient_checkpointing="offload"))
    layer_inputs = 32 * 4096 * 2048 * 2  # layers x hidden x tokens x bf16
    assert on.activations - offload.activations == layer_inputs
    assert any("CPU RAM" in n for n in offload.notes)


def test_estimate_cli_reads_the_training_keys_and_launch_variables(llama8b, capsys, monkeypatch):
    from tunelab.cli import main

    monkeypatch.setenv("NPROC_PER_NODE", "4")
    monkeypatch.setenv("NNODES", "2")
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert main(["estimate", f"model_name_or_path={llama8b}", "finetuning_type=full", "bf16=true",
                 "fsdp=full_shard auto_wrap", "--gpu-memory", "80GB", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["num_gpus"] == 8
    assert payload["components_bytes"]["optimizer"] == hand_count(LLAMA3_8B) * 12 // 8
