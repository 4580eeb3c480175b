"""LLaMA-Factory recipes run on TuneLab unchanged, and give the same token ids (issue 13, item 16).

The reference is LLaMA-Factory itself. Its pins (transformers, datasets, peft) conflict with ours,
so it cannot run inside this suite's venv: ``scripts/llamafactory_reference.py`` ran it in a side
venv on our demo data with the built-in tiny Qwen-style tokenizer and stored what its own pipeline
produced in ``tests/fixtures/llamafactory_reference.json``. With ``LLAMAFACTORY_PYTHON`` pointing
at that venv's python, the test runs the peer again instead of reading the stored ids.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tunelab.config import load_config
from tunelab.errors import ConfigError
from tunelab.resources import demo_data_dir

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def _reference(tokenizer_dir: Path, tmp_dir: Path) -> dict:
    peer = os.environ.get("LLAMAFACTORY_PYTHON")
    if not peer:
        return json.loads((FIXTURES / "llamafactory_reference.json").read_text())
    out = tmp_dir / "reference.json"
    subprocess.run([peer, str(REPO / "scripts" / "llamafactory_reference.py"), str(tokenizer_dir),
                    str(demo_data_dir()), str(out)], input=(FIXTURES / "llamafactory_cases.json").read_text(),
                   text=True, check=True, capture_output=True, timeout=600)
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from tunelab.testing import builtin_model_path

    tokenizer_dir = builtin_model_path("tunelab/tiny-chat")
    ref = _reference(tokenizer_dir, tmp_path_factory.mktemp("lf-reference"))
    # The stored ids are only valid for the tokenizer they were made with.
    assert hashlib.sha256((tokenizer_dir / "tokenizer.json").read_bytes()).hexdigest() == ref["tokenizer_sha256"]
    return ref


def _our_ids(case: dict) -> tuple[list, list]:
    from tunelab.data.pipeline import prepare_datasets
    from tunelab.model.loader import load_tokenizer

    keys = {"model_name_or_path": "tunelab/tiny-chat", "dataset": case["dataset"], "template": case["template"],
            "max_samples": case["max_samples"], "cutoff_len": case["cutoff_len"]}
    if case["default_system"] is not None:
        keys["default_system"] = case["default_system"]
    cfg = load_config(None, keys)
    prepared = prepare_datasets(cfg, load_tokenizer(cfg.model), "sft")
    return prepared.train["input_ids"], prepared.train["labels"]


CASES = json.loads((FIXTURES / "llamafactory_cases.json").read_text())


@pytest.mark.parametrize("index", range(len(CASES)),
                         ids=[f"{c['template']}-{c['default_system']!r}-{c['dataset']}" for c in CASES])
def test_token_ids_and_labels_equal_llamafactory(reference, index, monkeypatch):
    monkeypatch.chdir(REPO)  # dataset_dir: data, the demo datasets the reference read
    case = reference["cases"][index]
    ids, labels = _our_ids(case)
    assert len(ids) == len(case["input_ids"]) == case["max_samples"]
    for row, (ours, theirs) in enumerate(zip(ids, case["input_ids"])):
        assert ours == theirs, f"row {row}: {len(ours)} tokens vs LLaMA-Factory's {len(theirs)}"
    assert labels == case["labels"]


def test_empty_default_system_omits_the_system_block(reference):
    """The issue's case: template qwen + default_system "" was 12.6% longer than LLaMA-Factory."""
    by_case = {(c["template"], c["default_system"], c["dataset"]): c for c in reference["cases"]}
    empty = by_case[("qwen", "", "alpaca_en_demo")]["input_ids"]
    plain = by_case[("qwen", None, "alpaca_en_demo")]["input_ids"]
    assert sum(map(len, empty)) < sum(map(len, plain))  # the reference really differs


def test_every_key_llamafactory_documents_is_accepted(reference):
    refused = []
    for key, default in reference["keys"].items():
        try:
            load_config(None, {key: default})
        except ConfigError as exc:
            if "unknown key" in str(exc):
                refused.append(key)
    assert not refused


def test_an_inert_key_is_accepted_with_one_note():
    cfg = load_config(None, {"include_effective_tokens_per_second": True})
    notes = [n for n in cfg.notes if "include_effective_tokens_per_second" in n]
    assert len(notes) == 1 and "has no effect in TuneLab" in notes[0]


def test_template_names_llamafactory_recipes_use_are_accepted(chat_tok_factory):
    from tunelab.data.templates import apply_template

    names = ("qwen3_nothink", "qwen", "qwen3", "llama3", "llama2", "mistral", "gemma", "gemma3", "glm4",
             "chatglm3", "deepseek", "deepseek3", "deepseekr1", "phi", "phi4", "yi", "baichuan2", "intern2",
             "cohere", "falcon", "empty", "default", "alpaca", "vicuna", "chatml")
    for name in names:
        info = apply_template(chat_tok_factory(), name)
        assert info.name, name


@pytest.fixture
def chat_tok_factory(tiny_chat_path):
    from transformers import AutoTokenizer

    return lambda: AutoTokenizer.from_pretrained(tiny_chat_path)


# LLaMA-Factory's published text-model recipes, written from their documented keys:
# examples/train_lora/qwen3_lora_sft.yaml, examples/train_qlora/qwen3_lora_sft_otfq.yaml and
# examples/train_full/llama3_full_sft.yaml.
_COMMON = {
    "trust_remote_code": True, "stage": "sft", "do_train": True, "cutoff_len": 2048, "max_samples": 1000,
    "preprocessing_num_workers": 16, "dataloader_num_workers": 4, "logging_steps": 10, "save_steps": 500,
    "plot_loss": True, "overwrite_output_dir": True, "report_to": "none", "per_device_train_batch_size": 1,
    "lr_scheduler_type": "cosine", "warmup_ratio": 0.1, "bf16": True, "ddp_timeout": 180000000,
}
_LORA = {"finetuning_type": "lora", "lora_rank": 8, "lora_target": "all", "save_only_model": False,
         "gradient_accumulation_steps": 8, "learning_rate": 1.0e-4, "num_train_epochs": 3.0,
         "template": "qwen3_nothink"}
RECIPES = {
    "train_lora/qwen3_lora_sft": {"model_name_or_path": "Qwen/Qwen3-4B-Instruct-2507", **_COMMON, **_LORA,
                                  "dataset": "identity", "resume_from_checkpoint": None},
    "train_qlora/qwen3_lora_sft_otfq": {"model_name_or_path": "Qwen/Qwen3-4B-Instruct-2507", "quantization_bit": 4,
                                        "quantization_method": "bnb", **_COMMON, **_LORA,
                                        "dataset": "identity,alpaca_en_demo"},
    "train_full/llama3_full_sft": {"model_name_or_path": "meta-llama/Meta-Llama-3-8B-Instruct", **_COMMON,
                                   "finetuning_type": "full", "deepspeed": "examples/deepspeed/ds_z3_config.json",
                                   "dataset": "identity,alpaca_en_demo", "template": "llama3",
                                   "overwrite_cache": True, "gradient_accumulation_steps": 2,
                                   "learning_rate": 1.0e-5, "num_train_epochs": 3.0},
}
# Model and size only (and, for the full recipe, no DeepSpeed: a single CPU process here).
OVERRIDES = {"model_name_or_path": "tunelab/tiny-chat", "max_samples": 8, "cutoff_len": 128, "max_steps": 2,
             "preprocessing_num_workers": 1, "dataloader_num_workers": 0}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(RECIPES))
def test_llamafactory_example_recipes_train(name, tmp_path, tunelab_env):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(RECIPES[name], sort_keys=False))
    overrides = {**OVERRIDES, "output_dir": tmp_path / "run", **({"deepspeed": "null"} if "deepspeed" in RECIPES[name] else {})}
    done = subprocess.run([sys.executable, "-m", "tunelab", "train", str(recipe),
                           *[f"{k}={v}" for k, v in overrides.items()]], cwd=REPO, capture_output=True, text=True,
                          env={**tunelab_env, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    template = RECIPES[name]["template"]
    if template == "qwen3_nothink":
        assert "template 'qwen3_nothink' (a LLaMA-Factory name) renders as TuneLab's 'chatml'" in done.stderr
