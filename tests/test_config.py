"""Recipe parsing and validation: messages name the key, the value and what is allowed."""

import subprocess
import sys
from pathlib import Path

import pytest

from tunelab.config import load_config
from tunelab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_llama_factory_recipe_parses_unchanged():
    cfg = load_config(ROOT / "examples" / "qwen2.5_lora_sft.yaml")
    assert cfg.model.model_name_or_path == "Qwen/Qwen2.5-1.5B-Instruct"
    assert cfg.data.dataset == ["identity", "alpaca_en_demo"]
    assert cfg.method.lora_target == ["all"]
    assert cfg.training["gradient_accumulation_steps"] == 8
    assert cfg.training["bf16"] is True
    assert cfg.training_value("learning_rate") == pytest.approx(1e-4)


def test_overrides_are_typed_and_win_over_the_recipe():
    cfg = load_config(ROOT / "examples" / "tiny_lora_sft.yaml",
                      ["learning_rate=2e-4", "num_train_epochs=1", "lora_rank=4",
                       "placeholders.name=Zed", "dataset=identity,alpaca_en_demo"])
    assert cfg.training["learning_rate"] == pytest.approx(2e-4)
    assert cfg.training["num_train_epochs"] == 1.0
    assert cfg.method.lora_rank == 4
    assert cfg.data.placeholders == {"name": "Zed", "author": "TuneLab"}
    assert cfg.data.dataset == ["identity", "alpaca_en_demo"]


def test_unknown_key_names_the_closest_valid_keys():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["lora_rnak=8", "learnig_rate=1e-4"])
    text = str(info.value)
    assert "'lora_rnak'" in text and "lora_rank" in text
    assert "'learnig_rate'" in text and "learning_rate" in text


def test_bad_value_names_key_value_and_allowed():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["finetuning_type=lroa"])
    text = str(info.value)
    assert "finetuning_type" in text and "'lroa'" in text and "lora, freeze, full" in text
    assert "did you mean 'lora'" in text
    with pytest.raises(ConfigError, match="key 'lora_rank'.*expected an integer"):
        load_config(None, ["lora_rank=eight"])
    with pytest.raises(ConfigError, match="key 'per_device_train_batch_size'.*expected an integer"):
        load_config(None, ["per_device_train_batch_size=1.5"])


@pytest.mark.parametrize("pair, keys", [
    (["quantization_bit=4", "finetuning_type=full"], ("quantization_bit", "finetuning_type")),
    (["bf16=true", "fp16=true"], ("bf16", "fp16")),
    (["packing=true", "stage=dpo"], ("packing", "stage")),
])
def test_conflicting_pairs_name_both_keys(pair, keys):
    with pytest.raises(ConfigError) as info:
        load_config(None, pair)
    assert all(k in str(info.value) for k in keys)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("stage: sft\nlora_rank: [8\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+"):
        load_config(recipe)


def test_cli_prints_config_errors_without_traceback(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: tunelab/tiny-chat\nstage: sft\nlora_rnak: 8\n")
    out_dir = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "tunelab", "train", str(recipe),
                           f"output_dir={out_dir}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "did you mean 'lora_rank'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out_dir.exists()


def test_train_help_lists_keys_from_field_metadata():
    proc = subprocess.run([sys.executable, "-m", "tunelab", "train", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for key in ("lora_rank", "cutoff_len", "resume_from_checkpoint", "adapter_name_or_path"):
        assert key in proc.stdout


def test_keys_transformers_dropped_are_accepted_and_reported():
    cfg = load_config(None, ["logging_dir=logs", "warmup_ratio=0.1", "evaluation_strategy=steps"])
    assert cfg.training["warmup_steps"] == pytest.approx(0.1)
    assert cfg.training["eval_strategy"] == "steps"
    assert any("logging_dir" in note for note in cfg.notes)
    with pytest.raises(ConfigError, match=r"warmup_ratio.*\[0, 1\)"):
        load_config(None, ["warmup_ratio=5"])
