"""Method options that had no test: which parameters freeze options train, PiSSA's start, gradient
checkpointing, and pre-training a base model that has no chat template."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["max_steps=3", "logging_steps=1", "save_steps=100", "per_device_train_batch_size=4",
         "cutoff_len=128", "max_samples=16", "plot_loss=false"]


def tunelab(*args, env):
    proc = subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def log_losses(run):
    lines = (Path(run) / "events.jsonl").read_text().splitlines()
    return [e["loss"] for e in map(json.loads, lines) if e["type"] == "log"]


def changed_parameters(tiny_chat_path, run):
    before = load_file(Path(tiny_chat_path) / "model.safetensors")
    after = load_file(Path(run) / "model.safetensors")
    return {k for k in before if not torch.equal(before[k], after[k])}, set(before)


def test_freeze_modules_and_extra_modules_train_only_those(tmp_path, tunelab_env, tiny_chat_path):
    out = tmp_path / "run"
    tunelab("train", "examples/tiny_full_sft.yaml", f"model_name_or_path={tiny_chat_path}",
            f"output_dir={out}", *QUICK, "finetuning_type=freeze", "freeze_trainable_layers=1",
            "freeze_trainable_modules=mlp", "freeze_extra_modules=embed_tokens", env=tunelab_env)
    changed, names = changed_parameters(tiny_chat_path, out)
    wanted = {k for k in names if ".layers.1.mlp." in k or "embed_tokens" in k}
    assert wanted and changed == wanted


def test_pissa_init_starts_from_the_principal_singular_vectors(tiny_chat_path, tmp_path):
    from transformers import AutoModelForCausalLM

    from tunelab.config import load_config
    from tunelab.model import load_model, prepare_for_training

    cfg = load_config(None, [f"model_name_or_path={tiny_chat_path}", "dataset=identity",
                             "lora_rank=4", "lora_alpha=8", "lora_target=q_proj", "pissa_init=true",
                             "additional_target=null", f"output_dir={tmp_path / 'run'}"])
    model = prepare_for_training(load_model(cfg.model), cfg)
    original = AutoModelForCausalLM.from_pretrained(tiny_chat_path).model.layers[0].self_attn.q_proj.weight
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    low_rank = layer.lora_B["default"].weight @ layer.lora_A["default"].weight * layer.scaling["default"]
    # The adapter holds the top-4 singular directions; the base keeps the residual; together
    # they are the original weight.
    u, s, vh = torch.linalg.svd(original.detach().double(), full_matrices=False)
    top = (u[:, :4] * s[:4]) @ vh[:4]
    torch.testing.assert_close(low_rank.double(), top, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close((layer.base_layer.weight + low_rank).double(), original.double(),
                               rtol=1e-4, atol=1e-5)


def test_gradient_checkpointing_trains_to_the_same_losses(tmp_path, tunelab_env):
    from tunelab.config import load_config
    from tunelab.model import load_model, prepare_for_training

    runs = {}
    for flag in ("false", "true", "offload"):
        out = tmp_path / flag
        proc = tunelab("train", "examples/tiny_lora_sft.yaml", f"output_dir={out}", *QUICK,
                       f"gradient_checkpointing={flag}", env=tunelab_env)
        mode = {"false": "off", "true": "on"}.get(flag, flag)
        assert f"gradient checkpointing: {mode} (as the recipe sets it)" in proc.stdout
        runs[flag] = log_losses(out)
    assert len(runs["true"]) == 3 and runs["true"] == pytest.approx(runs["false"], rel=1e-5)
    # offload: reentrant checkpointing whose saved layer inputs go through torch's save_on_cpu
    assert runs["offload"] == pytest.approx(runs["false"], rel=1e-5)
    cfg = load_config(str(ROOT / "examples/tiny_lora_sft.yaml"),
                      ["gradient_checkpointing=true", f"output_dir={tmp_path / 'x'}"])
    assert prepare_for_training(load_model(cfg.model), cfg).is_gradient_checkpointing


def test_pretraining_a_base_model_without_a_chat_template(tmp_path, tunelab_env, tiny_chat_path):
    base = tmp_path / "base-model"
    shutil.copytree(tiny_chat_path, base)
    (base / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((base / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (base / "tokenizer_config.json").write_text(json.dumps(config))
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(base).chat_template is None
    out = tmp_path / "run"
    tunelab("train", "examples/tiny_lora_pt.yaml", f"model_name_or_path={base}", f"output_dir={out}",
            *QUICK, env=tunelab_env)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["stage"] == "pt"
    losses = log_losses(out)
    assert len(losses) == 3 and all(0 < v < 20 for v in losses)
