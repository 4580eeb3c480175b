"""Recipe parsing and validation: messages name the key, the value and what is allowed."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tunelab.config import Config, build_config, check_config, load_config
from tunelab.config.checks import check_can_train
from tunelab.config.data import DataArgs
from tunelab.config.method import MethodArgs
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


def test_a_key_that_needs_two_conditions_says_both_must_hold():
    # pref_ftx applies with stage dpo AND one of its losses: the note must not say "or".
    cfg = build_config({"stage": "sft", "dataset": "identity", "pref_ftx": 0.5})
    note = next(n for n in cfg.notes if "'pref_ftx'" in n)
    assert "it applies with stage: dpo and pref_loss: sigmoid/ipo/hinge/simpo" in note, note


def test_reference_model_keys_apply_only_where_a_reference_is_loaded():
    # The board shows a key where it applies: orpo and simpo are reference-free.
    from tunelab.config.spec import spec_for

    for key in ("ref_model", "ref_model_adapters", "ref_model_quantization_bit"):
        spec = spec_for(key)
        assert spec.applies({"stage": "dpo", "pref_loss": "sigmoid"}) and spec.applies({"stage": "kto"})
        assert not spec.applies({"stage": "dpo", "pref_loss": "orpo"})
        assert not spec.applies({"stage": "dpo", "pref_loss": "simpo"})
        assert not spec.applies({"stage": "sft"})


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


def test_check_config_reports_every_problem_at_once():
    raw = {"lora_rank": 0, "lora_dropout": 1.0, "cutoff_len": 2, "learning_rate": "abc",
           "lora_rnak": 8, "finetuning_type": "lroa", "per_device_train_batch_size": 0,
           "save_steps": -5, "val_size": 1.5}
    with pytest.raises(ConfigError) as info:
        build_config(raw, source="r.yaml")
    problems = {p.key: p for p in info.value.problems}
    assert set(problems) == set(raw)
    assert problems["lora_rank"].value == 0 and problems["lora_rank"].allowed == "an integer >= 1"
    assert problems["lora_dropout"].allowed == "a number in [0, 1)"
    assert problems["cutoff_len"].allowed == "an integer >= 8"
    assert problems["learning_rate"].value == "abc"
    assert problems["lora_rnak"].suggestions[0] == "lora_rank"
    assert problems["finetuning_type"].allowed == "one of: lora, freeze, full"
    assert problems["save_steps"].allowed == "a number > 0"
    text = str(info.value)
    assert text.startswith(f"r.yaml: {len(raw)} problems")
    for key in raw:
        assert f"key '{key}'" in text


def test_check_config_checks_a_config_built_in_code():
    cfg = Config(method=MethodArgs(lora_rank=0, finetuning_type="full", use_dora=True),
                 data=DataArgs(cutoff_len=4), training={"bf16": True, "fp16": True})
    with pytest.raises(ConfigError) as info:
        check_config(cfg)
    assert {p.key for p in info.value.problems} == {"lora_rank", "cutoff_len", "bf16", "use_dora"}
    with pytest.raises(ConfigError, match="key 'val_size'.*wrong type"):
        check_config(Config(data=DataArgs(val_size="abc")))
    check_config(Config())


@pytest.mark.parametrize("val_size", [0.0, 0.25, 3, 100])
def test_val_size_is_a_fraction_below_one_or_a_whole_count(val_size):
    assert build_config({"val_size": val_size}).data.val_size == val_size


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", float("nan"), float("inf")])
def test_non_finite_numbers_are_config_errors(value):
    with pytest.raises(ConfigError, match="learning_rate.*finite"):
        build_config({"learning_rate": value})


def test_keys_that_do_not_apply_are_noted_and_switches_conflict():
    cfg = build_config({"finetuning_type": "full", "lora_rank": 16})
    assert any("lora_rank" in n and "finetuning_type=full" in n for n in cfg.notes)
    with pytest.raises(ConfigError, match="use_dora.*conflicts with 'finetuning_type'"):
        build_config({"finetuning_type": "freeze", "use_dora": True})


@pytest.mark.parametrize("loss", ["orpo", "simpo"])
def test_reference_keys_with_a_reference_free_loss_are_refused_by_name(loss):
    keys = {"ref_model": "base", "ref_model_adapters": "a", "ref_model_quantization_bit": 4}
    with pytest.raises(ConfigError) as info:
        build_config({"stage": "dpo", "pref_loss": loss, **keys})
    assert [p.key for p in info.value.problems] == list(keys)
    for problem in info.value.problems:
        assert f"pref_loss {loss} is reference-free" in problem.problem
        assert f"remove {problem.key}" in problem.hint and "sigmoid, ipo or hinge" in problem.hint
    for fine in ({"stage": "dpo", "pref_loss": "ipo", **keys}, {"stage": "kto", **keys},
                 {"stage": "dpo", "pref_loss": loss}):
        build_config(fine)


# Bad recipes of issue 13 (items 14 and 15): each fails validation in a real `tunelab train`,
# before anything is loaded, with the key named and no traceback or run directory left behind.
BAD_RECIPES = [
    ("learning_rate: .nan\n", [], "learning_rate", "finite"),
    ("", ["learning_rate=inf"], "learning_rate", "finite"),
    ("", ["warmup_ratio=abc"], "warmup_ratio", "expected a number, got 'abc'"),
    ("output_dir: {tmp}/a_file\n", [], "output_dir", "is a file, not a folder"),
    ("deepspeed: {tmp}/ds.json\n", [], "deepspeed", "pip install deepspeed"),
    ("finetuning_type: full\nuse_dora: true\n", [], "use_dora", "conflicts with 'finetuning_type'"),
    ("save_steps: -5\n", [], "save_steps", "allowed: a number > 0"),
    ("val_size: 1.5\n", [], "val_size", "a fraction in [0, 1) or a whole number of rows"),
    ("stage: dpo\npref_loss: orpo\nref_model: tunelab/tiny-chat\n", [], "ref_model",
     "pref_loss orpo is reference-free"),
]


@pytest.mark.parametrize("body, overrides, key, phrase", BAD_RECIPES,
                         ids=[f"{r[2]}-{i}" for i, r in enumerate(BAD_RECIPES)])
def test_bad_recipes_are_config_errors_in_a_real_train(tmp_path, body, overrides, key, phrase):
    if key == "deepspeed" and importlib.util.find_spec("deepspeed") is not None:
        pytest.skip("DeepSpeed is installed here")
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "ds.json").write_text("{}")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: tunelab/tiny-chat\ndataset: identity\n"
                      + body.format(tmp=tmp_path))
    if "output_dir" not in body:
        overrides = [*overrides, f"output_dir={tmp_path / 'out'}"]
    proc = subprocess.run([sys.executable, "-m", "tunelab", "train", str(recipe), *overrides],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"key '{key}'" in proc.stderr and phrase in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.rglob("manifest.json"))


def test_all_bad_recipes_at_once_list_every_key(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(ConfigError) as info:
        load_config(None, ["learning_rate=inf", "warmup_ratio=abc", "save_steps=-5",
                           "val_size=1.5", "finetuning_type=full", "use_dora=true",
                           f"output_dir={tmp_path / 'a_file'}"])
    assert [p.key for p in info.value.problems] == ["learning_rate", "warmup_ratio", "save_steps",
                                                    "val_size", "output_dir", "use_dora"]


def test_deepspeed_is_needed_to_train_but_not_to_estimate(tmp_path):
    if importlib.util.find_spec("deepspeed") is not None:
        pytest.skip("DeepSpeed is installed here")
    cfg = build_config({"deepspeed": {"zero_optimization": {"stage": 3}}})
    with pytest.raises(ConfigError, match="key 'deepspeed'.*not installed") as info:
        check_can_train(cfg)
    assert "pip install deepspeed" in str(info.value)
    with pytest.raises(ConfigError, match="deepspeed.*not found"):
        build_config({"deepspeed": str(tmp_path / "missing.json")})
