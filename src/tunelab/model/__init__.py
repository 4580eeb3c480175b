"""Tokenizer and model loading, dtype, quantization and adapters (PEFT)."""

from tunelab.model.adapters import (
    adapter_base_model,
    check_adapter_dir,
    is_reward_model,
    linear_module_names,
    prepare_for_training,
    trainable_parameters,
)
from tunelab.model.loader import load_model, load_tokenizer, pick_dtype, resolve_model_path

__all__ = [
    "adapter_base_model",
    "check_adapter_dir",
    "is_reward_model",
    "linear_module_names",
    "load_model",
    "load_tokenizer",
    "pick_dtype",
    "prepare_for_training",
    "resolve_model_path",
    "trainable_parameters",
]
