"""The frozen reference model of the stages that measure the policy against one (dpo, kto).

Three cases, as LLaMA-Factory has them:

- ``ref_model`` set: that model (with ``ref_model_adapters`` applied and loaded in
  ``ref_model_quantization_bit`` bits when given) is loaded and frozen;
- LoRA and no ``ref_model``: no model is loaded, the reference is the policy's base with the
  adapter switched off (TRL disables the adapter for the reference forwards);
- full or freeze and no ``ref_model``: a second, frozen copy of the base model.

``tunelab.estimate`` prices the same three cases.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from tunelab.config.schema import Config


def adapter_is_reference(cfg: "Config") -> bool:
    """True when the reference is the policy itself with its adapter disabled."""
    return cfg.preference.ref_model is None and cfg.method.finetuning_type == "lora"


def load_reference(cfg: "Config") -> tuple[Any, str]:
    """``(model or None, what the reference is, for the run log)``."""
    pref = cfg.preference
    if pref.ref_model is not None:
        model = _load_frozen(dataclasses.replace(cfg.model, model_name_or_path=pref.ref_model,
                                                 quantization_bit=pref.ref_model_quantization_bit,
                                                 adapter_name_or_path=None), cfg, pref.ref_model_adapters)
        bits = f", {pref.ref_model_quantization_bit}-bit" if pref.ref_model_quantization_bit else ""
        adapters = f" + {', '.join(pref.ref_model_adapters)}" if pref.ref_model_adapters else ""
        return model, f"reference model: {pref.ref_model}{adapters}{bits} (ref_model), frozen"
    if adapter_is_reference(cfg):
        return None, ("reference model: the base model with the LoRA adapter disabled "
                      "(no second copy of the weights)" + _adapter_caveat(cfg))
    model = _load_frozen(cfg.model, cfg, None)
    return model, (f"reference model: a frozen copy of {cfg.model.model_name_or_path} "
                   f"({cfg.method.finetuning_type} trains the base weights, so the reference is a "
                   "second copy; set finetuning_type: lora to avoid it)")


def _adapter_caveat(cfg: "Config") -> str:
    if cfg.method.pissa_init:
        return ("; with pissa_init that base is the residual model, not the starting policy: "
                "set ref_model to measure against another model")
    if cfg.model.adapter_name_or_path and not cfg.method.create_new_adapter:
        return "; the adapter being continued is not part of the reference"
    return ""


def _load_frozen(model_args: Any, cfg: "Config", adapters: list[str] | None) -> Any:
    from tunelab.model import load_model

    model = load_model(model_args, cfg.training)
    for path in adapters or []:
        model = _apply_adapter(model, path, model_args.quantization_bit is not None, len(adapters))
    model.config.use_cache = False
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return model


def _apply_adapter(model: Any, path: str, quantized: bool, count: int) -> Any:
    """The adapter merged into the weights; a quantized model keeps its one adapter unmerged."""
    from peft import PeftModel

    from tunelab.model import check_adapter_dir

    check_adapter_dir(path)
    if quantized and count > 1:
        raise ConfigError("several adapters cannot be merged into a quantized reference model",
                          where="key 'ref_model_adapters'",
                          hint="give one adapter, or remove ref_model_quantization_bit")
    loaded = PeftModel.from_pretrained(model, path)
    return loaded if quantized else loaded.merge_and_unload()
