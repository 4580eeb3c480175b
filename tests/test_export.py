"""`tunelab export`: merge (LoRA, DoRA, QLoRA), shard, verify, refuse, and the CLI.

Adapters come from real `tunelab train` runs (a few steps at a high learning rate, so a merge
that did nothing would fail verification); each is trained once per module.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tunelab.errors import ConfigError, ModelError
from tunelab.export import ExportError, parse_size

ROOT = Path(__file__).resolve().parents[1]


def tunelab(*args, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run `python -m tunelab ...` from the checkout, no hub, one thread."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True,
                          text=True, env=full_env, cwd=ROOT, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def train_run(out: Path, recipe: str = "examples/tiny_lora_sft.yaml", *keys: str) -> Path:
    """A real run directory from `tunelab train` (3 steps), as every export user has one."""
    tunelab("train", recipe, f"output_dir={out}", "max_steps=3", "per_device_train_batch_size=4",
            "max_samples=16", "cutoff_len=128", "learning_rate=5e-2", "plot_loss=false", *keys)
    return out


def export(**keys):
    """run_export on a recipe given as keyword keys; the log lines are kept on the result."""
    from tunelab.config import load_config
    from tunelab.export import run_export

    lines: list[str] = []
    result = run_export(load_config(None, keys), log=lines.append)
    result.log = lines
    return result


def greedy_text(model, tokenizer, question: str, max_new_tokens: int = 24) -> str:
    ids = tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                        add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.fixture(scope="module")
def lora_adapter(tunelab_home, tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("runs") / "lora")


@pytest.fixture(scope="module")
def qlora_adapter(tunelab_home, tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("runs") / "qlora", "examples/tiny_qlora_sft.yaml",
                     "seed=1")


def leftovers(parent: Path) -> list[str]:
    """Staging folders an export left behind (there must be none)."""
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_lora_export_loads_with_plain_transformers_and_answers_like_the_chat_engine(
        lora_adapter, tiny_chat_path, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.config import load_config
    from tunelab.infer import create_engine

    out = tmp_path / "merged"
    result = export(adapter_name_or_path=str(lora_adapter), export_dir=str(out))
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json", "chat_template.jinja", "Modelfile", "export_info.json"} <= names
    assert result.verification["passed"] and result.verification["max_rel_diff"] < 1e-4
    assert any("verification passed" in line for line in result.log)
    assert not leftovers(tmp_path)

    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    engine = create_engine(load_config(None, {"adapter_name_or_path": str(lora_adapter),
                                              "infer_device": "cpu", "do_sample": False}))
    base = AutoModelForCausalLM.from_pretrained(tiny_chat_path).eval()
    differs_from_base = False
    try:
        for question in ("Who are you?", "What is 2 + 2?"):
            expected = engine.chat([{"role": "user", "content": question}], max_new_tokens=24)
            assert expected and greedy_text(model, tokenizer, question) == expected
            differs_from_base |= greedy_text(base, tokenizer, question) != expected
    finally:
        engine.close()
    assert differs_from_base  # the adapter changes the answers, so the match means something


def test_qlora_adapter_is_merged_onto_the_full_precision_base(qlora_adapter, tiny_chat_path, tmp_path):
    out = tmp_path / "merged"
    result = export(model_name_or_path=str(tiny_chat_path), adapter_name_or_path=str(qlora_adapter),
                    quantization_bit=4, export_dir=str(out), export_dtype="bfloat16")
    assert any("4-bit base (QLoRA)" in line and "without quantization" in line for line in result.log)
    assert result.verification["passed"], result.verification
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "bfloat16"
    info = json.loads((out / "export_info.json").read_text())
    assert info["adapter_trained_bits"] == 4 and info["dtype"] == "bfloat16"


def test_prequantized_base_names_the_original_weights(lora_adapter, tiny_chat_path, tmp_path):
    base = tmp_path / "tiny-chat-bnb-4bit"
    shutil.copytree(tiny_chat_path, base)
    config = json.loads((base / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    (base / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError) as err:
        export(model_name_or_path=str(base), adapter_name_or_path=str(lora_adapter),
               export_dir=str(tmp_path / "out"))
    assert "pre-quantized" in err.value.problem and "bitsandbytes" in err.value.problem
    assert str(tmp_path / "tiny-chat") + ")" in err.value.hint
    assert not (tmp_path / "out").exists()


def test_adapter_recording_a_prequantized_hub_base_fails_before_any_download(lora_adapter, tmp_path):
    adapter = tmp_path / "adapter"
    shutil.copytree(lora_adapter, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "unsloth/llama-3-8b-bnb-4bit"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError) as err:
        export(adapter_name_or_path=str(adapter), export_dir=str(tmp_path / "out"))
    assert "(unsloth/llama-3-8b)" in err.value.hint and "--model" in err.value.hint


def test_generation_config_stops_at_the_chat_templates_end_of_turn(tiny_chat_path, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_chat_path, base)
    generation = json.loads((base / "generation_config.json").read_text())
    generation["eos_token_id"] = 0  # like a base model that only knows <|endoftext|>
    (base / "generation_config.json").write_text(json.dumps(generation))
    result = export(model_name_or_path=str(base), export_dir=str(tmp_path / "out"),
                    export_verify=False)
    saved = json.loads((tmp_path / "out" / "generation_config.json").read_text())
    assert saved["eos_token_id"] == [0, 2]
    assert any("<|im_end|>" in line and "eos_token_id" in line for line in result.log)


def test_small_shards_have_a_complete_index_and_reload(tiny_chat_path, tmp_path):
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    out = tmp_path / "sharded"
    result = export(model_name_or_path=str(tiny_chat_path), export_dir=str(out), export_size="150KB",
                    export_modelfile=False)
    assert len(result.weight_files) >= 3
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(result.weight_files)
    for shard in result.weight_files:
        with safe_open(str(out / shard), framework="pt") as handle:
            assert all(index["weight_map"][key] == shard for key in handle.keys())
    base = AutoModelForCausalLM.from_pretrained(tiny_chat_path)
    assert set(index["weight_map"]) == set(base.state_dict())
    AutoModelForCausalLM.from_pretrained(out)  # loads without missing keys


def test_shard_sizes_parse_like_users_write_them():
    assert parse_size("1.5GB") == 1_500_000_000
    assert parse_size("500MB") == 500_000_000
    assert parse_size(1.88) == 1_880_000_000
    assert parse_size(2) == parse_size("2") == 2_000_000_000
    assert parse_size("1GiB") == 2**30 and parse_size("64kb") == 64_000
    for bad in ("lots", "5XB", "-1GB", True):
        with pytest.raises(ConfigError):
            parse_size(bad)


def test_dtype_auto_keeps_a_bf16_base_bf16(tiny_chat_path, tmp_path):
    from transformers import AutoModelForCausalLM

    base = tmp_path / "bf16-base"
    AutoModelForCausalLM.from_pretrained(tiny_chat_path, dtype=torch.bfloat16).save_pretrained(base)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(tiny_chat_path / name, base / name)
    result = export(model_name_or_path=str(base), export_dir=str(tmp_path / "out"))
    assert result.dtype == "bfloat16"
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert reloaded.dtype == torch.bfloat16


@pytest.mark.slow
def test_several_adapters_and_dora_merge_in_order(tiny_chat_path, lora_adapter, tmp_path):
    # DoRA, with the head trained in full beside it (additional_target: lm_head)
    dora = train_run(tmp_path / "dora", "examples/tiny_lora_sft.yaml", "use_dora=true",
                     "additional_target=lm_head", "seed=2")
    result = export(model_name_or_path=str(tiny_chat_path),
                    adapter_name_or_path=f"{lora_adapter},{dora}", export_dir=str(tmp_path / "out"),
                    export_modelfile=False)
    assert result.verification["passed"]
    assert json.loads((tmp_path / "out" / "export_info.json").read_text())["adapters"] == [
        str(lora_adapter), str(dora)]


def test_failed_verification_leaves_nothing_behind(lora_adapter, tmp_path, monkeypatch):
    from peft import PeftModel

    def merge_that_drops_the_adapter(model, adapters, before_last_merge):
        # The reference sees the adapter; the saved model does not: what verification must catch.
        with_adapter = PeftModel.from_pretrained(model, adapters[-1]).eval()
        before_last_merge(with_adapter)
        return with_adapter.unload()

    monkeypatch.setattr("tunelab.export.merge.merge_adapters", merge_that_drops_the_adapter)
    with pytest.raises(ExportError) as err:
        export(adapter_name_or_path=str(lora_adapter), export_dir=str(tmp_path / "out"))
    assert "verification FAILED" in str(err.value) and "merge before the dtype cast" in str(err.value)
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)


def test_refuses_a_non_empty_folder_unless_overwriting(tiny_chat_path, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError) as err:
        export(model_name_or_path=str(tiny_chat_path), export_dir=str(out))
    assert "not empty" in err.value.problem and "export_overwrite" in err.value.hint
    export(model_name_or_path=str(tiny_chat_path), export_dir=str(out), export_overwrite=True,
           export_verify=False)
    assert not (out / "notes.txt").exists() and (out / "export_info.json").is_file()
    assert not leftovers(tmp_path)


def test_legacy_format_writes_bin_shards(tiny_chat_path, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "legacy"
    result = export(model_name_or_path=str(tiny_chat_path), export_dir=str(out),
                    export_legacy_format=True, export_size="300KB")
    assert result.weight_files and all(f.endswith(".bin") for f in result.weight_files)
    assert (out / "pytorch_model.bin.index.json").is_file()
    assert result.verification["passed"]
    AutoModelForCausalLM.from_pretrained(out)


def test_hub_push_without_network_says_the_export_is_complete(tiny_chat_path, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    out = tmp_path / "out"
    with pytest.raises(ExportError) as err:
        export(model_name_or_path=str(tiny_chat_path), export_dir=str(out),
               export_hub_model_id="someone/tiny", export_verify=False)
    assert "is complete" in err.value.problem and "hf upload someone/tiny" in err.value.hint
    assert (out / "export_info.json").is_file()


def export_parser():
    """A parser with only `export` registered, so these tests do not depend on other commands."""
    import argparse

    from tunelab.cli import export as export_cli

    parser = argparse.ArgumentParser(prog="tunelab")
    export_cli.register(parser.add_subparsers(dest="command"))
    return parser


def test_cli_flags_map_onto_recipe_keys(lora_adapter, tmp_path, capsys):
    out = tmp_path / "cli-out"
    args = export_parser().parse_args(
        ["export", "export_verify_tolerance=0.01", "--adapter", str(lora_adapter), "--out", str(out),
         "--max-shard-size", "0.0002", "--dtype", "float16", "--no-modelfile"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "verification passed" in printed and "export complete" in printed
    info = json.loads((out / "export_info.json").read_text())
    assert info["dtype"] == "float16" and info["max_shard_bytes"] == 200_000
    assert info["verification"]["tolerance"] == 0.01
    assert len(info["weight_files"]) > 1 and not (out / "Modelfile").exists()


def test_cli_reports_a_refusal_without_a_traceback(tiny_chat_path, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "file").write_text("x")
    proc = tunelab("export", "--model", tiny_chat_path, "--out", out, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "is not empty" in proc.stderr and "--overwrite" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_qlora_run_exports_through_the_cli_with_gguf(qlora_adapter, tmp_path):
    """The issue's path end to end: `tunelab train` QLoRA (4-bit on CPU) -> `tunelab export`."""
    out = tmp_path / "merged"
    printed = tunelab("export", "examples/tiny_qlora_sft.yaml",
                      f"adapter_name_or_path={qlora_adapter}/checkpoint-3", "--out", out,
                      "--gguf", "q8_0").stdout
    assert "4-bit base (QLoRA)" in printed and "verification passed" in printed
    info = json.loads((out / "export_info.json").read_text())
    assert info["adapter_trained_bits"] == 4 and info["verification"]["merge_rel_diff"] < 1e-4
    assert info["gguf"] == [{"file": "merged-q8_0.gguf", "type": "q8_0", "tensors": 21}]


# ---------------------------------------------------------------- never harm the inputs (issue 13)

def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_out_pointing_at_the_run_itself_is_refused_and_the_run_survives(lora_adapter):
    before = _snapshot(lora_adapter)
    proc = tunelab("export", "--adapter", lora_adapter, "--out", lora_adapter, "--overwrite",
                   check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "is the adapter" in proc.stderr and "Traceback" not in proc.stderr
    assert _snapshot(lora_adapter) == before


def test_out_inside_around_or_at_a_run_or_the_base_is_refused(lora_adapter, tiny_chat_path, tmp_path):
    before = _snapshot(lora_adapter)
    cases = [
        ({"adapter_name_or_path": str(lora_adapter)}, lora_adapter / "merged", "is inside the adapter"),
        ({"adapter_name_or_path": f"{lora_adapter}/checkpoint-3"}, lora_adapter,
         "contains the adapter"),
        ({"adapter_name_or_path": str(lora_adapter)}, lora_adapter.parent, "contains the adapter"),
        ({"model_name_or_path": str(tiny_chat_path)}, tiny_chat_path, "is the base model"),
        ({"model_name_or_path": str(tiny_chat_path)}, lora_adapter.parent,
         f"contains the training run {lora_adapter}"),
        ({"model_name_or_path": str(tiny_chat_path)}, lora_adapter / "checkpoint-3" / "x",
         f"is inside the training run {lora_adapter}"),
    ]
    for keys, out, expected in cases:
        with pytest.raises(ConfigError) as err:
            export(**keys, export_dir=str(out), export_overwrite=True)
        assert expected in err.value.problem, (out, err.value.problem)
        assert err.value.where == "key 'export_dir'" and "outside" in err.value.hint
    assert _snapshot(lora_adapter) == before and not (lora_adapter / "merged").exists()
    assert (tiny_chat_path / "model.safetensors").is_file()


def _partials(parent: Path, name: str) -> list[Path]:
    return sorted(parent.glob(f".{name}.partial-*"))


def test_a_killed_exports_partial_folder_is_removed_by_the_next_export(tiny_chat_path, tmp_path):
    out = tmp_path / "merged"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tunelab", "export", "--model", str(tiny_chat_path),
                             "--out", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not _partials(tmp_path, "merged") and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)  # mid-export: the staging folder exists, nothing at --out
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    (stale,) = _partials(tmp_path, "merged")
    assert stale.name == f".merged.partial-{proc.pid}" and not out.exists()
    # A partial folder whose writer is still running must be left alone.
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        live = tmp_path / f".merged.partial-{writer.pid}"
        live.mkdir()
        (live / "config.json").write_text("{}")
        result = export(model_name_or_path=str(tiny_chat_path), export_dir=str(out),
                        export_verify=False)
        assert live.is_dir() and (live / "config.json").is_file()
    finally:
        writer.kill()
        writer.wait()
    assert any(f"removed {stale.name}" in line and f"pid {proc.pid}" in line for line in result.log), result.log
    assert not stale.exists() and (out / "export_info.json").is_file()


def test_a_recipe_template_does_not_replace_the_trained_one_unless_insisted(lora_adapter, tiny_chat_path,
                                                                             tmp_path):
    from tunelab.data.templates import template_source

    trained = (lora_adapter / "chat_template.jinja").read_text()
    assert template_source("default") != trained
    kept = export(adapter_name_or_path=str(lora_adapter), template="default",
                  export_dir=str(tmp_path / "kept"), export_verify=False, export_modelfile=False)
    assert (tmp_path / "kept" / "chat_template.jinja").read_text() == trained
    warning = [line for line in kept.log if line.startswith("warning: keeping the chat template")]
    assert warning and "template=default" in warning[0] and "export_template_override" in warning[0]
    assert "--override-template" in warning[0]

    forced = export(adapter_name_or_path=str(lora_adapter), template="default",
                    export_template_override=True, export_dir=str(tmp_path / "forced"),
                    export_verify=False, export_modelfile=False)
    assert (tmp_path / "forced" / "chat_template.jinja").read_text() == template_source("default")
    assert any("replaces the chat template" in line for line in forced.log)
    # A base model was trained with nothing: the recipe's template is simply applied.
    base = export(model_name_or_path=str(tiny_chat_path), template="default",
                  export_dir=str(tmp_path / "base"), export_verify=False, export_modelfile=False)
    assert (tmp_path / "base" / "chat_template.jinja").read_text() == template_source("default")
    assert not any(line.startswith("warning") for line in base.log)


# ---------------------------------------------------------------- non-finite weights say so (issue 13)

def test_a_nan_adapter_is_refused_naming_nan_and_the_tensors(lora_adapter, tmp_path):
    from safetensors.torch import load_file, save_file

    adapter = tmp_path / "nan-run"
    shutil.copytree(lora_adapter, adapter)
    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    poisoned = sorted(name for name in tensors if "lora_B" in name)[:2]
    for name in poisoned:
        tensors[name][0, 0] = float("nan")
    save_file(tensors, str(adapter / "adapter_model.safetensors"))
    with pytest.raises(ExportError) as err:
        export(adapter_name_or_path=str(adapter), export_dir=str(tmp_path / "out"))
    problem = err.value.problem
    assert f"NaN in 2 of {len(tensors)} tensors" in problem
    assert all(name in problem for name in poisoned)
    assert "DIFFER" not in str(err.value) and "difference 0" not in str(err.value)
    assert err.value.where == str(adapter / "adapter_model.safetensors")
    assert "learning_rate" in err.value.hint and "checkpoint" in err.value.hint
    assert not (tmp_path / "out").exists() and not leftovers(tmp_path)


def test_a_model_with_inf_weights_is_refused_naming_the_tensor(tiny_chat_path, tmp_path):
    from safetensors.torch import load_file, save_file

    base = tmp_path / "full-run"
    shutil.copytree(tiny_chat_path, base)
    tensors = load_file(str(base / "model.safetensors"))
    tensors["model.norm.weight"][3] = float("inf")
    save_file(tensors, str(base / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ExportError) as err:
        export(model_name_or_path=str(base), export_dir=str(tmp_path / "out"))
    assert "inf in 1 of" in err.value.problem and "model.norm.weight" in err.value.problem
    assert not (tmp_path / "out").exists()


def test_nan_logits_are_reported_as_nan_never_as_a_zero_difference():
    from tunelab.export.verify import compare_logits

    reference = [torch.tensor([[1.0, 2.0], [3.0, 4.0]])]
    exported = [torch.tensor([[1.0, float("nan")], [3.0, 4.0]])]
    report = compare_logits(reference, exported, tolerance=1e-4)
    assert not report.passed
    assert "NaN" in report.describe() and "difference 0" not in report.describe()
    assert not compare_logits(exported, reference, tolerance=1e-4).passed
