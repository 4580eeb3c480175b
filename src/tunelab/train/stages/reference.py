"""The frozen reference model of the stages that measure the policy against one (dpo, kto).

Three cases, as in LLaMA-Factory (except that a continued adapter is measured against its own
start, as TRL does, not against the bare base):

- ``ref_model`` set: that model (with ``ref_model_adapters`` applied and loaded in
  ``ref_model_quantization_bit`` bits when given) is loaded and frozen;
- LoRA and no ``ref_model``: no model is loaded. A fresh adapter starts as a zero update, so
  the reference is the policy's base with the adapter switched off (TRL disables the adapter for
  the reference forwards); an adapter that does not start as one (continued from
  ``adapter_name_or_path``, or PiSSA, which moves the base) is the starting policy only together
  with its base, so TRL's frozen copy of the starting adapter ("ref") is the reference;
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
    """True when the reference is the policy itself: its base with the adapter disabled, or its
    base with TRL's frozen copy of the starting adapter."""
    return cfg.preference.ref_model is None and cfg.method.finetuning_type == "lora"


def adapter_starts_as_base(cfg: "Config") -> bool:
    """True when the policy's LoRA adapter starts as a zero update of the base it is attached to:
    a new one (``create_new_adapter`` merges the given adapters into that base first), not PiSSA."""
    continued = cfg.model.adapter_name_or_path and not cfg.method.create_new_adapter
    return cfg.method.finetuning_type == "lora" and not continued and not cfg.method.pissa_init


def drop_reference_copy(cfg: "Config", model: Any) -> None:
    """TRL gives a PEFT policy without ``ref_model`` a second adapter named "ref", a frozen copy
    of the starting one (modules_to_save included). When the adapter starts as a zero update the
    base with adapters disabled is the same reference without the copy, which TRL uses when no
    "ref" adapter exists; otherwise the copy is the reference and stays."""
    has_copy = "ref" in getattr(model, "peft_config", {})
    if has_copy and adapter_is_reference(cfg) and adapter_starts_as_base(cfg):
        model.delete_adapter("ref")


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
    if adapter_is_reference(cfg) and adapter_starts_as_base(cfg):
        return None, ("reference model: the base model with the LoRA adapter disabled "
                      "(no second copy of the weights)")
    if adapter_is_reference(cfg):
        start = "PiSSA adapter" if cfg.method.pissa_init else "adapter being continued"
        return None, (f"reference model: the starting policy, i.e. the base with a frozen copy of the "
                      f"{start} (TRL's \"ref\" adapter; no second copy of the base weights)")
    model = _load_frozen(cfg.model, cfg, None)
    return model, (f"reference model: a frozen copy of {cfg.model.model_name_or_path} "
                   f"({cfg.method.finetuning_type} trains the base weights, so the reference is a "
                   "second copy; set finetuning_type: lora to avoid it)")


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
