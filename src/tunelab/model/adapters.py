"""Make a loaded model trainable as the recipe's method says: LoRA/DoRA (PEFT), freeze, or full.

A reward model (a sequence classifier) is handled like a causal LM, except that its new score
head is always trained: LoRA saves it beside the adapter (PEFT's SEQ_CLS task), freeze trains it
with the chosen layers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from tunelab.config.schema import Config

_LINEAR_CLASS_NAMES = ("Linear", "Linear4bit", "Linear8bitLt")
# Output heads: a causal LM's and a reward model's (transformers' *ForSequenceClassification).
HEAD_NAMES = ("lm_head", "score")
REWARD_HEAD = "score"


def is_reward_model(model: Any) -> bool:
    """Whether ``model`` (or the model inside a PeftModel) is a sequence classifier."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return type(base).__name__.endswith("ForSequenceClassification")


def linear_module_names(model: Any, exclude: tuple[str, ...] = HEAD_NAMES) -> list[str]:
    """Short names of every linear layer (e.g. q_proj, down_proj) except the output head."""
    names = set()
    for full_name, module in model.named_modules():
        if type(module).__name__ not in _LINEAR_CLASS_NAMES:
            continue
        short = full_name.split(".")[-1]
        if short not in exclude and not any(head in full_name for head in exclude):
            names.add(short)
    return sorted(names)


def lora_targets(model: Any, requested: list[str]) -> list[str]:
    """Resolve ``lora_target`` ("all" or names) against the modules the model really has."""
    return resolve_lora_targets(linear_module_names(model), requested)


def resolve_lora_targets(available: list[str], requested: list[str]) -> list[str]:
    """``lora_target`` ("all" or names) checked against the short names of a model's linear
    layers (``available``, head excluded): the names LoRA is attached to."""
    if [t.lower() for t in requested] == ["all"]:
        return available
    missing = [t for t in requested if t not in available]
    if missing:
        raise ConfigError(f"module(s) {', '.join(missing)} not found in the model",
                          where="key 'lora_target'",
                          hint=f"use 'all' or some of: {', '.join(available)}")
    return list(requested)


def trainable_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total) parameter counts, counting 4-bit packed weights at their true size."""
    trainable = total = 0
    for param in model.parameters():
        count = param.numel()
        if type(param).__name__ == "Params4bit":
            count *= 2
        total += count
        if param.requires_grad:
            trainable += count
    return trainable, total


def prepare_for_training(model: Any, cfg: "Config") -> Any:
    """Attach adapters or set ``requires_grad`` per ``finetuning_type``; returns the model to train."""
    method = cfg.method
    # A KV cache during training also makes transformers ignore packed-sequence boundaries.
    model.config.use_cache = False
    quantized = cfg.model.quantization_bit is not None
    # "auto" is resolved by `tunelab train` from the memory estimate before the model loads;
    # a caller that did not resolve it gets the cheaper choice, off.
    checkpointing = method.gradient_checkpointing not in (False, None, "auto")
    if quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    if method.finetuning_type == "lora":
        model = _attach_lora(model, cfg, quantized)
    elif method.finetuning_type == "freeze":
        _apply_freeze(model, method)
    else:
        for param in model.parameters():
            param.requires_grad_(True)
    if checkpointing:
        # offload moves what checkpointing saves (each layer's input) to CPU RAM through
        # torch's save_on_cpu, which sees only tensors saved for backward: the reentrant
        # checkpoint saves its inputs that way, the non-reentrant one keeps them in a closure.
        reentrant = method.gradient_checkpointing == "offload"
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
        if hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()
    return model


def _attach_lora(model: Any, cfg: "Config", quantized: bool) -> Any:
    from peft import LoraConfig, PeftModel, get_peft_model

    method = cfg.method
    adapters = cfg.model.adapter_name_or_path or []
    for path in adapters:
        check_adapter_dir(path)
    if adapters and not method.create_new_adapter:
        # Continue the last adapter's weights; earlier ones (if several) are merged into the base.
        for path in adapters[:-1]:
            model = _merge_adapter(model, path, quantized)
        return PeftModel.from_pretrained(model, adapters[-1], is_trainable=True)
    for path in adapters:
        model = _merge_adapter(model, path, quantized)
    reward = is_reward_model(model)
    _check_reward_targets(method.additional_target, reward)
    config = LoraConfig(
        # SEQ_CLS makes PEFT train the score head fully and save it beside the adapter.
        task_type="SEQ_CLS" if reward else "CAUSAL_LM",
        r=method.lora_rank,
        lora_alpha=method.lora_alpha or 2 * method.lora_rank,
        lora_dropout=method.lora_dropout,
        target_modules=lora_targets(model, method.lora_target),
        modules_to_save=method.additional_target,
        use_dora=method.use_dora,
        use_rslora=method.use_rslora,
        init_lora_weights="pissa" if method.pissa_init else True,
    )
    return get_peft_model(model, config)


def _check_reward_targets(targets: list[str] | None, reward: bool) -> None:
    if reward and targets and "lm_head" in targets:
        raise ConfigError("a reward model has no lm_head: its head is 'score', which is trained "
                          "and saved with the adapter anyway", where="key 'additional_target'",
                          hint="drop lm_head (e.g. additional_target: embed_tokens, or leave it unset)")


def _merge_adapter(model: Any, path: str, quantized: bool) -> Any:
    from peft import PeftModel

    if quantized:
        raise ConfigError("cannot merge an earlier adapter into a quantized base",
                          where="key 'adapter_name_or_path'",
                          hint="give a single adapter to continue it, or train without quantization_bit")
    return PeftModel.from_pretrained(model, path).merge_and_unload()


def check_adapter_dir(path: str) -> Path:
    """Fail early, naming the folder, when an adapter path holds no PEFT adapter."""
    folder = Path(path)
    if not (folder / "adapter_config.json").is_file():
        found = "does not exist" if not folder.exists() else "has no adapter_config.json"
        raise ModelError(f"{path} {found}", where="key 'adapter_name_or_path'",
                         hint="point at a LoRA adapter folder: a TuneLab run directory or one of its "
                              "checkpoint-N folders")
    return folder


def adapter_base_model(path: str) -> str | None:
    """The base model an adapter was trained on, as recorded in its adapter_config.json."""
    config = json.loads((check_adapter_dir(path) / "adapter_config.json").read_text())
    return config.get("base_model_name_or_path")


_LAYER_INDEX = re.compile(r"\.layers\.(\d+)\.")


def layer_index(name: str) -> int | None:
    """Decoder layer index of a parameter or module name (``model.layers.3.mlp`` -> 3)."""
    match = _LAYER_INDEX.search(f".{name}.")
    return int(match.group(1)) if match else None


def _apply_freeze(model: Any, method: Any) -> None:
    """Train the last (or first, if negative) N decoder layers plus any extra named modules."""
    num_layers = model.config.num_hidden_layers
    n = method.freeze_trainable_layers
    if n == 0 or abs(n) > num_layers:
        raise ConfigError(f"must be between 1 and {num_layers} (or its negative), got {n}",
                          where="key 'freeze_trainable_layers'")
    layers = set(range(num_layers - n, num_layers)) if n > 0 else set(range(-n))
    modules = [m.lower() for m in method.freeze_trainable_modules]
    extras = method.freeze_extra_modules or []
    if is_reward_model(model) and REWARD_HEAD not in extras:
        extras = [*extras, REWARD_HEAD]  # a new, random head must learn whatever else is frozen
    hit_extra = set()
    for name, param in model.named_parameters():
        index = layer_index(name)
        in_layer = index in layers and (modules == ["all"] or any(f".{m}." in name for m in modules))
        extra = next((e for e in extras if f".{e}." in f".{name}"), None)
        if extra:
            hit_extra.add(extra)
        param.requires_grad_(bool(in_layer or extra))
    missing = sorted(set(extras) - hit_extra)
    if missing:
        raise ConfigError(f"module(s) {', '.join(missing)} not found", where="key 'freeze_extra_modules'",
                          hint="use top-level names such as embed_tokens, norm, lm_head")
    for param in model.parameters():
        if param.requires_grad and param.dtype != _float32():
            param.data = param.data.float()


def _float32() -> Any:
    import torch

    return torch.float32


def record_base_name(folder: Path, name: str | None) -> None:
    """Adapters remember the base by the name the user gave (e.g. tunelab/tiny-chat), not the
    cache path it resolved to. Done after saving: PEFT looks the base up by this name while saving."""
    path = Path(folder) / "adapter_config.json"
    if not name or not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = str(name)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
