"""What every evaluation needs first: a validated recipe for the model (+ adapters), the
tokenizer it was trained with, and the model loaded as TuneLab loads it for inference."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from tunelab.config.schema import Config

# Recipe keys that change how a sample is encoded: a run's own values are the default when
# evaluating it, so it is measured on data encoded as it was trained on.
RUN_ENCODING_KEYS = ("stage", "template", "cutoff_len", "train_on_prompt", "mask_history",
                     "enable_thinking", "default_system", "placeholders")


def run_encoding_options(folder: str | Path) -> dict[str, Any]:
    """The encoding keys a run was trained with (from its manifest; {} for a non-run folder)."""
    from tunelab.runs import RunDir

    path = Path(folder)
    for candidate in (path, path.parent):  # a checkpoint-N folder belongs to its parent run
        manifest = RunDir(candidate).read_manifest()
        if manifest:
            given = manifest.get("config_given") or {}
            return {k: given[k] for k in RUN_ENCODING_KEYS if given.get(k) is not None}
    return {}


def evaluation_config(model: str | None, adapters: list[str] | None, datasets: list[str],
                      keys: dict[str, Any] | None = None, need_data: bool = True) -> "Config":
    """A validated recipe for evaluating ``model`` (+ ``adapters``) on ``datasets``.

    The last adapter's run (or the model's, for a full run) supplies the encoding keys it was
    trained with; ``keys`` (any recipe key, e.g. dataset_dir, max_samples) override them.
    ``need_data=False`` (benchmarks bring their own data) allows no dataset.
    """
    from tunelab.config import load_config

    if need_data and not datasets:
        raise ConfigError("no dataset chosen to evaluate on", where="key 'dataset'",
                          hint="pick one or more datasets from dataset_info.json, e.g. identity")
    adapters = list(adapters or [])
    trained_on = adapters[-1] if adapters else model
    raw: dict[str, Any] = run_encoding_options(trained_on) if trained_on else {}
    raw.update({k: v for k, v in (keys or {}).items() if v is not None})
    raw.update(val_size=0, packing=False)
    if datasets:
        raw["dataset"] = ",".join(datasets)
    if model:
        raw["model_name_or_path"] = model
    if adapters:
        raw["adapter_name_or_path"] = ",".join(adapters)
    return load_config(None, raw)


def model_source(cfg: "Config") -> tuple[str, list[str]]:
    """(base model name, adapters); a model path that holds only an adapter counts as an adapter
    (and the recipe is changed to say so, for the loaders that read it)."""
    from tunelab.infer.loading import base_model_name
    from tunelab.model import check_adapter_dir

    model = cfg.model.model_name_or_path
    adapters = list(cfg.model.adapter_name_or_path or [])
    if model and (Path(model) / "adapter_config.json").is_file() and not (Path(model) / "config.json").is_file():
        adapters = [model, *adapters]
        cfg.sections["model"] = dataclasses.replace(cfg.model, model_name_or_path=None,
                                                    adapter_name_or_path=adapters)
    for adapter in adapters:
        check_adapter_dir(adapter)
    return base_model_name(cfg), adapters


def training_tokenizer(cfg: "Config", adapters: list[str]) -> Any:
    """The tokenizer the model trained with: the last adapter's run saved it, template included."""
    from tunelab.infer.loading import adapter_tokenizer_dir, base_model_name
    from tunelab.model import load_tokenizer

    own = adapter_tokenizer_dir(adapters[-1]) if adapters else None
    path = str(own) if own else base_model_name(cfg)
    return load_tokenizer(dataclasses.replace(cfg.model, model_name_or_path=path))


def load_scored_model(cfg: "Config", model_name: str, adapters: list[str]) -> Any:
    """The base on the inference device; earlier adapters merged in, the last one attached."""
    from tunelab.model.loader import pick_device
    from tunelab.model import load_model

    model_args = dataclasses.replace(cfg.model, model_name_or_path=model_name, adapter_name_or_path=None)
    model = load_model(model_args, device=pick_device(cfg.infer.infer_device))
    if adapters:
        from peft import PeftModel

        for adapter in adapters[:-1]:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        model = PeftModel.from_pretrained(model, adapters[-1])
    return model.eval()
