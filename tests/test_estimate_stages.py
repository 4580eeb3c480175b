"""The memory estimate of the post-training stages, against numbers computed by hand: the
reference model (a copy of the weights with full/freeze, none with LoRA or for orpo/simpo, an
explicit ref_model in its own bits), the online stages' reward model, grpo's generations, and the two
sequences (chosen + rejected) of a preference pair."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunelab.config import load_config
from tunelab.estimate import estimate_memory
from tunelab.cli.format_estimate import format_estimate

LLAMA2_7B = dict(model_type="llama", vocab_size=32000, hidden_size=4096, intermediate_size=11008,
                 num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                 tie_word_embeddings=False)
# A small Llama with grouped-query attention, as a separate reference / reward model.
SMALL = dict(LLAMA2_7B, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
             num_attention_heads=16, num_key_value_heads=4)


def hand_params(c: dict) -> tuple[int, int]:
    """(all parameters, linear weights bitsandbytes quantizes) of a Llama config."""
    h, i, layers, vocab = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    kv = c["num_key_value_heads"] * h // c["num_attention_heads"]
    linear = layers * (2 * h * h + 2 * h * kv + 3 * h * i)
    return 2 * vocab * h + linear + layers * 2 * h + h, linear


def write_config(folder: Path, config: dict) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


@pytest.fixture(scope="module")
def llama7b(tmp_path_factory) -> str:
    return write_config(tmp_path_factory.mktemp("llama7b"), LLAMA2_7B)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> str:
    return write_config(tmp_path_factory.mktemp("small"), SMALL)


def staged(folder: str, stage: str, keys: dict | None = None, **later):
    """A recipe for ``stage``, read as kto and the stage and its keys then set on the parsed
    sections (so a reward model needs no real folder)."""
    cfg = load_config(None, {"model_name_or_path": folder, "stage": "kto", "cutoff_len": 1024,
                             "per_device_train_batch_size": 2, **(keys or {})})
    cfg.method.stage = stage
    for name, value in later.items():
        section = cfg.preference if hasattr(cfg.preference, name) else cfg.rl
        setattr(section, name, value)
    return estimate_memory(cfg)


@pytest.mark.parametrize("stage", ["kto", "dpo", "rloo"])
def test_full_finetuning_keeps_a_reference_copy_the_size_of_the_weights(llama7b, stage):
    est = staged(llama7b, stage, {"finetuning_type": "full"}, grpo_beta=0.05)
    total, _ = hand_params(LLAMA2_7B)
    assert est.reference == total * 2 == est.weights  # bf16, as the policy is loaded
    assert "frozen copy of the base" in est.details["reference"]


def test_freeze_reference_is_the_whole_base_in_its_load_dtype(llama7b):
    est = staged(llama7b, "kto", {"finetuning_type": "freeze"})
    assert est.reference == hand_params(LLAMA2_7B)[0] * 2
    assert est.weights > est.reference  # the policy's trained layers are upcast to fp32, the copy's not


@pytest.mark.parametrize("stage", ["kto", "dpo"])
def test_lora_without_ref_model_has_no_reference_copy(llama7b, stage):
    est = staged(llama7b, stage, {"finetuning_type": "lora"})
    assert est.reference == 0
    assert "LoRA adapter disabled" in est.details["reference"]
    lora = staged(llama7b, stage, {"finetuning_type": "lora"}).total
    full = staged(llama7b, stage, {"finetuning_type": "full"})
    assert full.total > lora + full.reference  # the copy is part of why full costs more


@pytest.mark.parametrize("loss", ["orpo", "simpo"])
def test_orpo_and_simpo_have_no_reference(llama7b, loss):
    est = staged(llama7b, "dpo", {"finetuning_type": "full"}, pref_loss=loss)
    assert est.reference == 0 and "need no reference" in est.details["reference"]
    assert staged(llama7b, "dpo", {"finetuning_type": "full"}, pref_loss="ipo").reference > 0


def test_explicit_ref_model_is_priced_at_its_own_size_and_bits(llama7b, small):
    total, linear = hand_params(SMALL)
    plain = staged(llama7b, "kto", {"finetuning_type": "lora", "ref_model": small})
    assert plain.reference == total * 2
    four = staged(llama7b, "kto", {"finetuning_type": "lora", "ref_model": small,
                                   "ref_model_quantization_bit": 4})
    # nf4 halves of a byte, one absmax byte per 64 weights, one fp32 per 256 absmax blocks;
    # embeddings, head and norms stay bf16 (nothing of a frozen model is upcast)
    assert four.reference == linear // 2 + linear // 64 + 4 * linear // (64 * 256) + (total - linear) * 2
    eight = staged(llama7b, "kto", {"finetuning_type": "lora", "ref_model": small,
                                    "ref_model_quantization_bit": 8})
    out_features = SMALL["num_hidden_layers"] * (2 * 1024 + 2 * 256 + 2 * 2816 + 1024)
    assert eight.reference == linear + 4 * out_features + (total - linear) * 2


@pytest.mark.parametrize("stage", ["grpo", "rloo"])
def test_reward_model_full_lora_and_api(llama7b, small, tmp_path, stage):
    total, linear = hand_params(SMALL)
    full = staged(llama7b, stage, reward_model=small, reward_model_type="full")
    assert full.reward_model == total * 2
    four = staged(llama7b, stage, reward_model=small, reward_model_type="full",
                  reward_model_quantization_bit=4)
    assert four.reward_model == linear // 2 + linear // 64 + 4 * linear // (64 * 256) + (total - linear) * 2
    run = tmp_path / "rm-run"
    run.mkdir()
    (run / "adapter_model.safetensors").write_bytes(b"\0" * 123_456)
    # lora: the scorer is a second, frozen copy of the policy's base plus the rm adapter
    lora = staged(llama7b, stage, reward_model=str(run), reward_model_type="lora")
    assert lora.reward_model == hand_params(LLAMA2_7B)[0] * 2 + 123_456
    assert "frozen copy of the policy's base" in lora.details["reward_model"]
    api = staged(llama7b, stage, reward_model="http://127.0.0.1:9/score", reward_model_type="api")
    assert api.reward_model == 0 and "HTTP endpoint" in api.details["reward_model"]
    assert full.total - api.total >= total * 2  # the reward model adds at least its weights
    assert staged(llama7b, stage).reward_model == 0


def test_preference_pairs_feed_two_sequences(llama7b):
    pairs = staged(llama7b, "dpo", {"finetuning_type": "lora", "per_device_train_batch_size": 2})
    rows = staged(llama7b, "kto", {"finetuning_type": "lora", "per_device_train_batch_size": 4})
    assert pairs.activations == rows.activations  # 2 pairs = 4 sequences of 1024 tokens
    assert "2 rows x 2 (chosen + rejected) x 1024 tokens" in pairs.details["activations"]


def test_grpo_generations_and_kv_cache(llama7b):
    # TRL's batch counts completions: 8 per micro-batch (2 prompts x 4 generations), and one
    # generation round samples both accumulated micro-batches, 16 sequences.
    est = staged(llama7b, "grpo", {"finetuning_type": "lora", "per_device_train_batch_size": 8,
                                   "gradient_accumulation_steps": 2},
                 num_generations=4, max_completion_length=256, grpo_beta=0.0)
    sampled, tokens = 8 * 2, 1024 + 256
    # K and V per layer, 32 layers x 4096 (32 kv heads x 128), bf16
    assert est.generation == sampled * tokens * 2 * 32 * 4096 * 2
    assert "KV cache of 16 completions (8 per micro-batch x 2 accumulated" in est.details["generation"]
    same = staged(llama7b, "kto", {"finetuning_type": "lora", "per_device_train_batch_size": 8,
                                   "gradient_accumulation_steps": 2, "cutoff_len": tokens})
    assert est.activations == same.activations
    assert est.reference == 0 and "grpo_beta 0" in est.details["reference"]
    beta = staged(llama7b, "grpo", {"finetuning_type": "full"}, grpo_beta=0.04)
    assert beta.reference == hand_params(LLAMA2_7B)[0] * 2
    # the cache is gone before the training forward: counted once, as the larger of the two
    assert est.overlap <= -min(est.generation, est.activations + est.logits)


def test_estimate_output_names_the_stage_parts(llama7b, small):
    text = format_estimate(staged(llama7b, "kto", {"finetuning_type": "full"}))
    assert "reference model" in text and "frozen copy of the base" in text
    text = format_estimate(staged(llama7b, "grpo", reward_model=small, reward_model_type="full"))
    assert "reward model" in text and "full reward model, frozen" in text
    text = format_estimate(staged(llama7b, "grpo", num_generations=4))
    assert "generation (KV cache)" in text and "num_generations=4" in text
    assert "reference model" not in format_estimate(estimate_memory(load_config(
        None, {"model_name_or_path": llama7b})))


def test_cli_estimate_of_a_kto_recipe(llama7b, tmp_path):
    recipe = tmp_path / "kto.yaml"
    recipe.write_text(f"model_name_or_path: {llama7b}\nstage: kto\nfinetuning_type: full\n")
    done = subprocess.run([sys.executable, "-m", "tunelab", "estimate", str(recipe)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.strip().startswith("reference model"))
    assert f"{hand_params(LLAMA2_7B)[0] * 2 / 1024**3:.2f}" in line
