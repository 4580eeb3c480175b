"""Reference token ids from LLaMA-Factory itself, for tests/test_llamafactory_compat.py.

Run with the Python of a separate venv that has LLaMA-Factory installed (its pins conflict with
ours, so it cannot live in TuneLab's venv):

    python3 -m venv /work/lf-venv && /work/lf-venv/bin/pip install torch==2.13.0 llamafactory
    /work/lf-venv/bin/python scripts/llamafactory_reference.py TOKENIZER_DIR DATA_DIR OUT.json

It reads the cases (template, default_system, dataset, max_samples, cutoff_len) from the JSON
list given on stdin, runs
LLaMA-Factory's own dataset pipeline (converter, template, supervised processor) on each and
writes ``{"version", "cases": [{..., "input_ids": [[...]], "labels": [[...]]}], "keys": {...}}``,
where ``keys`` maps every recipe key LLaMA-Factory documents to its default (JSON-able or null).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.machinery
import json
import sys
import tempfile
import types
from pathlib import Path


def _stub_audio() -> None:
    # LLaMA-Factory's multimodal plugin imports torchaudio at module level; text templates never
    # call it, and no torchaudio build matches the local CPU torch wheel.
    if "torchaudio" not in sys.modules:
        module = types.ModuleType("torchaudio")
        module.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
        sys.modules["torchaudio"] = module


def _encode(case: dict, tokenizer_dir: str, data_dir: str) -> dict:
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    out = tempfile.mkdtemp()
    args = {"model_name_or_path": tokenizer_dir, "stage": "sft", "do_train": True, "finetuning_type": "lora",
            "dataset": case["dataset"], "dataset_dir": data_dir, "template": case["template"],
            "cutoff_len": case.get("cutoff_len", 1024), "output_dir": out, "overwrite_cache": True,
            "report_to": "none", "preprocessing_num_workers": None}
    if case.get("default_system") is not None:
        args["default_system"] = case["default_system"]
    if case.get("max_samples"):
        args["max_samples"] = case["max_samples"]
    model_args, data_args, training_args, _, _ = get_train_args(args)
    tokenizer = load_tokenizer(model_args)["tokenizer"]
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    data = get_dataset(template, model_args, data_args, training_args, "sft", tokenizer=tokenizer)
    rows = data["train_dataset"]
    return {**case, "input_ids": list(rows["input_ids"]), "labels": list(rows["labels"])}


def _keys() -> dict:
    from llamafactory.hparams import DataArguments, FinetuningArguments, GeneratingArguments, ModelArguments
    from llamafactory.hparams.training_args import TrainingArguments
    from transformers import TrainingArguments as HFTrainingArguments

    hf = {f.name for f in dataclasses.fields(HFTrainingArguments)}
    keys = {}
    for cls in (ModelArguments, DataArguments, FinetuningArguments, GeneratingArguments, TrainingArguments):
        for f in dataclasses.fields(cls):
            if cls is TrainingArguments and f.name in hf:
                continue
            default = f.default if f.default is not dataclasses.MISSING else None
            keys[f.name] = default if isinstance(default, (str, int, float, bool, type(None))) else None
    return keys


def main() -> None:
    tokenizer_dir, data_dir, out = sys.argv[1:4]
    _stub_audio()
    import llamafactory

    from llamafactory.data.template import TEMPLATES

    cases = []
    for case in json.load(sys.stdin):
        # get_template_and_fix_tokenizer writes default_system into the shared template object;
        # each case starts from LLaMA-Factory's registered templates again.
        saved = copy.deepcopy(TEMPLATES)
        cases.append(_encode(case, tokenizer_dir, data_dir))
        TEMPLATES.clear()
        TEMPLATES.update(saved)
    tokenizer_json = Path(tokenizer_dir, "tokenizer.json").read_bytes()
    result = {"version": llamafactory.__version__, "tokenizer_sha256": hashlib.sha256(tokenizer_json).hexdigest(),
              "cases": cases, "keys": _keys()}
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
