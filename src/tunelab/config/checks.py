"""Cross-key rules: pairs of options that cannot be used together, and values out of range."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from tunelab.config.schema import Config


def _conflict(a: str, b: str, why: str, fix: str) -> ConfigError:
    return ConfigError(f"'{a}' conflicts with '{b}': {why}", where="recipe", hint=fix)


def check_config(cfg: "Config") -> None:
    """Raise ConfigError for the first rule the recipe breaks."""
    m, d, meth = cfg.model, cfg.data, cfg.method
    if m.quantization_bit is not None and meth.finetuning_type != "lora":
        raise _conflict("quantization_bit", "finetuning_type",
                        f"a {m.quantization_bit}-bit base cannot be trained with "
                        f"finetuning_type={meth.finetuning_type}; only adapters train on a quantized base",
                        "set finetuning_type: lora (QLoRA) or remove quantization_bit")
    if meth.pissa_init and m.quantization_bit is not None:
        raise _conflict("pissa_init", "quantization_bit", "PiSSA needs the full-precision weights",
                        "remove one of them")
    if cfg.training.get("bf16") and cfg.training.get("fp16"):
        raise _conflict("bf16", "fp16", "mixed precision has one dtype", "keep only one of them")
    if meth.lora_rank < 1:
        raise ConfigError(f"must be a positive integer, got {meth.lora_rank}", where="key 'lora_rank'")
    if not 0.0 <= meth.lora_dropout < 1.0:
        raise ConfigError(f"must be in [0, 1), got {meth.lora_dropout}", where="key 'lora_dropout'")
    if d.cutoff_len < 8:
        raise ConfigError(f"must be at least 8 tokens, got {d.cutoff_len}", where="key 'cutoff_len'")
    if d.val_size < 0:
        raise ConfigError(f"must be >= 0, got {d.val_size}", where="key 'val_size'")
    if d.max_samples is not None and d.max_samples < 1:
        raise ConfigError(f"must be >= 1, got {d.max_samples}", where="key 'max_samples'")
    if d.packing and meth.stage not in ("pt", "sft"):
        raise _conflict("packing", "stage", f"packing applies to pt and sft, not {meth.stage}",
                        "remove packing or use stage: sft")
    if d.streaming:
        raise ConfigError("streaming datasets are not supported yet", where="key 'streaming'",
                          hint="remove it; use max_samples to train on part of a large dataset")
    for key in ("learning_rate", "num_train_epochs"):
        value = cfg.training.get(key)
        if value is not None and value < 0:
            raise ConfigError(f"must be >= 0, got {value}", where=f"key '{key}'")
    for key in ("per_device_train_batch_size", "gradient_accumulation_steps"):
        value = cfg.training.get(key)
        if value is not None and value < 1:
            raise ConfigError(f"must be >= 1, got {value}", where=f"key '{key}'")
