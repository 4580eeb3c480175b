"""DeepSpeed and FSDP keys, kernel and memory keys, and launcher variables: validated before
anything loads (one clear line each), and resolved the way transformers' own integration does."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunelab.config import build_config
from tunelab.config.checks import check_can_train
from tunelab.config.distributed import sharding
from tunelab.config.machine import launch_problems
from tunelab.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples" / "deepspeed").glob("ds_z*.json"))
BASE = {"model_name_or_path": "tunelab/tiny-chat", "dataset": "identity"}


def problem(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        build_config({**BASE, **raw})
    return str(info.value)


@pytest.fixture(autouse=True)
def restore_environment():
    """transformers and accelerate export FSDP settings (ACCELERATE_USE_FSDP, FSDP_*) into
    os.environ when arguments are built; later in-process trainers would read them."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_deepspeed_files_that_are_missing_broken_or_of_an_unknown_stage(tmp_path):
    assert "config file nowhere.json not found" in problem({"deepspeed": "nowhere.json"})
    # a LLaMA-Factory recipe names its own example file: point at ours
    lf = problem({"deepspeed": "examples/deepspeed/ds_z3_config.json"})
    assert "examples/deepspeed/ds_z3.json" in lf
    (tmp_path / "bad.json").write_text('{"zero_optimization": {"stage": 3},}')
    assert f"{tmp_path / 'bad.json'}: not valid JSON" in problem({"deepspeed": str(tmp_path / "bad.json")})
    (tmp_path / "list.json").write_text("[1, 2]")
    assert "a JSON object" in problem({"deepspeed": str(tmp_path / "list.json")})
    text = problem({"deepspeed": {"zero_optimization": {"stage": 4}}})
    assert "key 'deepspeed': unknown ZeRO stage 4" in text and "0, 1, 2, 3" in text


def test_deepspeed_with_fsdp_and_sharded_8bit_bases_conflict():
    with pytest.raises(ConfigError) as info:
        build_config({**BASE, "deepspeed": {"zero_optimization": {"stage": 2}}, "fsdp": "full_shard"})
    assert len(info.value.problems) == 1  # one line (and its hint), not a cascade
    assert str(info.value).startswith("key 'deepspeed': conflicts with 'fsdp'")
    zero3 = problem({"deepspeed": {"zero_optimization": {"stage": 3}}, "quantization_bit": 8})
    assert "ZeRO-3 cannot shard an 8-bit" in zero3 and "quantization_bit: 4" in zero3
    assert "FSDP cannot shard" in problem({"fsdp": "full_shard", "quantization_bit": 8})
    # ZeRO-2 does not shard weights, and 4-bit bases are stored in a dtype ZeRO-3 can split
    build_config({**BASE, "deepspeed": {"zero_optimization": {"stage": 2}}, "quantization_bit": 8})
    build_config({**BASE, "deepspeed": {"zero_optimization": {"stage": 3}}, "quantization_bit": 4})


def test_fsdp_options_and_fsdp_config_files(tmp_path):
    assert "'hybrid_shard' is an FSDP1 strategy" in problem({"fsdp": "hybrid_shard auto_wrap"})
    assert "'full_shrad' is not an FSDP option" in problem({"fsdp": "full_shrad"})
    typo = problem({"fsdp_config": {"transformer_layer_cls_to_wrp": ["LlamaDecoderLayer"]}})
    assert "unknown fsdp_config key 'transformer_layer_cls_to_wrp'" in typo
    assert "did you mean 'transformer_layer_cls_to_wrap'?" in typo
    assert "version=1 is not supported" in problem({"fsdp": True, "fsdp_config": {"version": 1}})
    (tmp_path / "fsdp.json").write_text(json.dumps({"fsdp_state_dict_type": "SHARDED_STATE_DICT"}))
    cfg = build_config({**BASE, "fsdp_config": str(tmp_path / "fsdp.json")})  # the file alone turns it on
    found = sharding(cfg)
    assert (found.engine, found.stage) == ("fsdp", 3)
    assert found.fsdp_config == {"version": 2, "cpu_ram_efficient_loading": True,
                                 "state_dict_type": "SHARDED_STATE_DICT"}
    found = sharding(build_config({**BASE, "fsdp": "shard_grad_op offload auto_wrap"}))
    assert (found.stage, found.offload_params, found.offload_optimizer) == (2, True, True)
    assert found.fsdp_config["reshard_after_forward"] is False and found.fsdp_config["cpu_offload"] is True


def test_fsdp_keys_become_transformers_fsdp2_plugin_arguments(tmp_path, monkeypatch):
    """What transformers' own argument parsing makes of the kwargs TuneLab passes."""
    monkeypatch.delenv("ACCELERATE_USE_FSDP", raising=False)
    monkeypatch.delenv("FSDP_CPU_RAM_EFFICIENT_LOADING", raising=False)
    from tunelab.train.workflow import training_arguments

    cfg = build_config({**BASE, "fsdp": "full_shard auto_wrap"})
    args = training_arguments(cfg, tmp_path / "run", "run")
    plugin = args.fsdp_plugin_args
    assert args.fsdp is True
    assert plugin["fsdp_version"] == 2 and plugin["cpu_ram_efficient_loading"] is True
    assert plugin["state_dict_type"] == "FULL_STATE_DICT" and plugin["reshard_after_forward"] is True


def _hf_resolver() -> type:
    """transformers' HfTrainerDeepSpeedConfig (the code the Trainer runs to fill "auto") on
    accelerate's config base. transformers swaps that base for `object` when the deepspeed
    package is missing (as here), so the same methods are mounted on the real base."""
    from accelerate.utils.deepspeed import HfDeepSpeedConfig
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig as HF

    class Resolver(HfDeepSpeedConfig):
        is_auto, fill_match, fill_only = HF.is_auto, HF.fill_match, HF.fill_only
        trainer_config_process, trainer_config_finalize = HF.trainer_config_process, HF.trainer_config_finalize

        def __init__(self, config: dict) -> None:
            super().__init__(config)
            self._dtype, self.mismatches = None, []

    return Resolver


def test_every_shipped_deepspeed_config_resolves_its_auto_values(tmp_path, tiny_chat_path):
    """Each examples/deepspeed file through transformers' "auto" resolution: none is left, and
    each value is the recipe's (hand-computed below)."""
    from transformers import AutoModelForCausalLM, TrainingArguments

    from tunelab.train.workflow import training_kwargs

    assert [p.name for p in EXAMPLES] == ["ds_z0.json", "ds_z2.json", "ds_z2_offload.json",
                                          "ds_z3.json", "ds_z3_offload.json"]
    resolver = _hf_resolver()
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_path)
    for path in EXAMPLES:
        cfg = build_config({**BASE, "deepspeed": str(path), "per_device_train_batch_size": 3,
                            "gradient_accumulation_steps": 5, "max_grad_norm": 0.7, "bf16": True})
        stage = int(path.name[4])
        found = sharding(cfg)
        assert found.stage == stage and found.offload_optimizer == ("offload" in path.name)
        args = TrainingArguments(**{**training_kwargs(cfg, tmp_path / "run", "run"), "deepspeed": None})
        resolved = resolver(json.loads(path.read_text()))
        resolved.trainer_config_process(args)
        resolved.trainer_config_finalize(args, model, num_training_steps=10)
        assert "auto" not in json.dumps(resolved.config), path.name
        c = resolved.config
        assert (c["train_micro_batch_size_per_gpu"], c["gradient_accumulation_steps"]) == (3, 5)
        assert c["train_batch_size"] == 15 and c["gradient_clipping"] == 0.7  # 1 process x 3 x 5
        assert c["bf16"]["enabled"] is True and c["fp16"]["enabled"] is False
        hidden = model.config.hidden_size
        if stage >= 2:
            assert c["zero_optimization"]["reduce_bucket_size"] == hidden * hidden
        if stage == 3:
            assert c["zero_optimization"]["stage3_param_persistence_threshold"] == 10 * hidden
            assert c["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is not None, reason="DeepSpeed is installed")
def test_a_real_train_says_deepspeed_is_not_installed(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tunelab", "train", "examples/tiny_lora_sft.yaml",
                           "deepspeed=examples/deepspeed/ds_z3.json", f"output_dir={tmp_path / 'out'}"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "key 'deepspeed': DeepSpeed is not installed" in proc.stderr
    assert "pip install deepspeed" in proc.stderr and not (tmp_path / "out").exists()


@pytest.mark.skipif(importlib.util.find_spec("liger_kernel") is not None, reason="liger-kernel is installed")
def test_kernel_keys_name_what_is_missing_on_this_machine():
    import torch

    cfg = build_config({**BASE, "enable_liger_kernel": True, "flash_attn": "fa2"})
    assert cfg.training["use_liger_kernel"] is True  # LLaMA-Factory's name for the key
    with pytest.raises(ConfigError) as info:
        check_can_train(cfg)
    text = str(info.value)
    assert "key 'use_liger_kernel': liger-kernel is not installed" in text
    assert "pip install liger-kernel" in text
    if not torch.cuda.is_available():
        assert "Liger's kernels are Triton GPU kernels and no CUDA device is visible" in text
        assert "key 'flash_attn': FlashAttention 2 runs on CUDA GPUs only" in text
    # the 8-bit optimizers run where bitsandbytes is installed (on CPU too)
    if importlib.util.find_spec("bitsandbytes") is not None:
        check_can_train(build_config({**BASE, "optim": "paged_adamw_8bit"}))


def test_inert_kernel_keys_became_real_keys():
    from tunelab.config.compat import INERT_KEYS

    for key in ("enable_liger_kernel", "use_unsloth_gc", "disable_gradient_checkpointing"):
        assert key not in INERT_KEYS
    assert build_config({**BASE, "use_unsloth_gc": True}).method.use_unsloth_gc is True


@pytest.mark.parametrize("env, phrase", [
    ({"NNODES": "2", "NODE_RANK": "1"}, "NNODES=2 needs MASTER_ADDR and MASTER_PORT"),
    ({"NNODES": "2", "NODE_RANK": "2", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"},
     "NODE_RANK=2 but NNODES=2"),
    ({"NPROC_PER_NODE": "two"}, "NPROC_PER_NODE='two' is not a whole number >= 1"),
    ({"NNODES": "0"}, "NNODES='0' is not a whole number >= 1"),
])
def test_launcher_variables_are_checked(env, phrase):
    assert phrase in " | ".join(str(p) for p in launch_problems(env))


def test_a_good_two_node_environment_passes():
    assert launch_problems({"NNODES": "2", "NODE_RANK": "1", "NPROC_PER_NODE": "8",
                            "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}) == []


def test_a_save_of_ungathered_shards_fails_the_run(tmp_path):
    """What a ZeRO-3 save without gathering writes (zero-element tensors) is caught and named."""
    import torch
    from safetensors.torch import save_file

    from tunelab.errors import RunError
    from tunelab.runs import RunDir
    from tunelab.train.distributed import check_saved_weights

    run = RunDir(tmp_path / "run")
    run.write_manifest({"status": "running"})
    save_file({"q.lora_A.weight": torch.ones(2, 3)}, str(run.path / "adapter_model.safetensors"))
    check_saved_weights(run)  # whole tensors: nothing to say
    save_file({"q.lora_A.weight": torch.ones(2, 3), "q.lora_B.weight": torch.empty(0)},
              str(run.path / "adapter_model.safetensors"))
    with pytest.raises(RunError, match=r"1 empty tensor\(s\) \(q.lora_B.weight\)") as info:
        check_saved_weights(run)
    assert "stage3_gather_16bit_weights_on_model_save" in str(info.value)
    assert run.read_manifest()["status"] == "failed"
