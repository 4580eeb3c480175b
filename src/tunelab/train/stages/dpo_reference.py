"""The reference model of a dpo run, and the line the run log gives about it.

- ``ref_model`` set: that model (``ref_model_adapters`` merged in, ``ref_model_quantization_bit``
  honoured), frozen.
- LoRA/DoRA/QLoRA without ``ref_model``: no second model. A fresh adapter starts as a zero
  update, so the reference is the base with the adapter disabled; an adapter continued from
  ``adapter_name_or_path`` (or a PiSSA start, which changes the base) is its own reference, kept
  by TRL as a frozen copy of the adapter weights only.
- full/freeze without ``ref_model``: a frozen copy of the starting model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tunelab.train.stages.context import StageContext


def reference_model(ctx: StageContext) -> tuple[Any | None, bool]:
    """``(reference or None, fresh_adapter)``: None lets TRL score the reference through the
    policy itself; ``fresh_adapter`` says that the base with adapters disabled is the reference."""
    from tunelab.train.workflow import log

    cfg = ctx.cfg
    if cfg.preference.ref_model:
        log(f"reference model: {cfg.preference.ref_model} (ref_model), frozen")
        return _load_given(cfg), False
    if cfg.method.finetuning_type == "lora":
        if cfg.model.adapter_name_or_path and not cfg.method.create_new_adapter or cfg.method.pissa_init:
            log("reference model: the policy's starting adapter (TRL keeps a frozen copy of the "
                "adapter weights only; no second copy of the base)")
            return None, False
        log("reference model: the base model with the adapter disabled (no second copy of the "
            "weights)")
        return None, True
    log(f"reference model: a frozen copy of {cfg.model.model_name_or_path} "
        f"(finetuning_type {cfg.method.finetuning_type}; set ref_model to use another)")
    return _frozen(_load(cfg.model, cfg)), False


def _load_given(cfg: Any) -> Any:
    from peft import PeftModel

    from tunelab.errors import ConfigError
    from tunelab.model.adapters import check_adapter_dir

    pref = cfg.preference
    args = dataclasses.replace(cfg.model, model_name_or_path=pref.ref_model, adapter_name_or_path=None,
                               quantization_bit=pref.ref_model_quantization_bit)
    adapters = pref.ref_model_adapters or []
    quantized = args.quantization_bit is not None
    if quantized and len(adapters) > 1:
        raise ConfigError("a quantized reference model takes one adapter (adapters cannot be merged "
                          "into a quantized base)", where="key 'ref_model_adapters'",
                          hint="give one adapter, or remove ref_model_quantization_bit")
    model = _load(args, cfg)
    for path in adapters:
        model = PeftModel.from_pretrained(model, str(check_adapter_dir(path)))
        if not quantized:
            model = model.merge_and_unload()
    return _frozen(model)


def _load(model_args: Any, cfg: Any) -> Any:
    from tunelab.model import load_model

    return load_model(model_args, cfg.training)


def _frozen(model: Any) -> Any:
    model.config.use_cache = False
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model
