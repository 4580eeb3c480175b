"""Load the base unquantized, fold adapters into it, and pick the export's dtype and device."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable

from tunelab.export.source import ExportSource, check_not_prequantized, read_model_config

if TYPE_CHECKING:
    from tunelab.config.schema import Config

_DTYPE_NAMES = {"bfloat16", "float16", "float32"}


def export_dtype_name(requested: str, source: ExportSource) -> str:
    """The dtype the export is written in: the recipe's, else the base's own (never fp32 by accident)."""
    if requested != "auto":
        return requested
    config = read_model_config(source.base_path)
    recorded = config.get("dtype") or config.get("torch_dtype")
    text_config = config.get("text_config") or {}
    recorded = recorded or text_config.get("dtype") or text_config.get("torch_dtype")
    if isinstance(recorded, str) and recorded.replace("torch.", "") in _DTYPE_NAMES:
        return recorded.replace("torch.", "")
    return "float32"


def work_dtype_name(export_dtype: str, device: str) -> str:
    """Merge in fp32 on CPU (exact, and CPU bf16 kernels are slow); on a GPU, in the export dtype."""
    return "float32" if device == "cpu" else export_dtype


def load_unquantized(cfg: "Config", path: str, dtype: str, device: str,
                     head: str = "causal_lm") -> Any:
    """The model at ``path`` in ``dtype`` with the recipe's other loading options, never quantized;
    ``head="reward"`` loads it as a reward model (a sequence classifier with one output)."""
    from tunelab.model import load_model

    model_args = dataclasses.replace(cfg.model, model_name_or_path=path, adapter_name_or_path=None,
                                     quantization_bit=None, torch_dtype=dtype, flash_attn="disabled")
    model = load_model(model_args, device=device, head=head)
    if getattr(model.config, "quantization_config", None) is not None:
        # A hub checkpoint that was not on disk when the recipe was checked turned out quantized.
        check_not_prequantized(path, path, model.config.to_dict())
    model.eval()
    return model


def merge_adapters(model: Any, adapters: list[str], before_last_merge: Callable[[Any], None]) -> Any:
    """Fold every adapter into ``model`` in order; returns the plain (un-PEFT'd) merged model.

    ``before_last_merge`` sees the model with the last adapter attached but not yet merged: the
    reference the export is verified against (earlier adapters are already folded in by then).
    """
    from peft import PeftModel

    for index, adapter in enumerate(adapters):
        model = PeftModel.from_pretrained(model, adapter)
        model.eval()
        if index == len(adapters) - 1:
            before_last_merge(model)
        model = model.merge_and_unload()
    return model


def cast_for_export(model: Any, dtype: str) -> Any:
    """Cast weights to the export dtype and record it in the config so loaders pick it up."""
    import torch

    torch_dtype = getattr(torch, dtype)
    model = model.to(torch_dtype)
    model.config.dtype = torch_dtype
    return model


def fix_generation_eos(model: Any, tokenizer: Any) -> bool:
    """Make ``generate`` stop at the end-of-turn token the chat template emits; True if changed.

    A base model's generation config often names only its end-of-text token, while the chat
    template (and the trained adapter) ends each assistant turn with the tokenizer's eos, e.g.
    <|im_end|>: without this, the exported model would ramble past the end of its answer.
    """
    generation = getattr(model, "generation_config", None)
    eos = tokenizer.eos_token_id
    if generation is None or eos is None:
        return False
    current = generation.eos_token_id
    ids = list(current) if isinstance(current, (list, tuple)) else ([] if current is None else [current])
    if generation.pad_token_id is None and tokenizer.pad_token_id is not None:
        generation.pad_token_id = tokenizer.pad_token_id
    if eos in ids:
        return False
    generation.eos_token_id = ids + [eos] if ids else eos
    return True
