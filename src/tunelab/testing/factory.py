"""Build tiny random-init Llama models, offline and byte-for-byte reproducible."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.errors import ModelError

_COMMON = {"max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
           "hidden_act": "silu", "initializer_range": 0.02}

SIZES: dict[str, dict[str, Any]] = {
    # ~0.2M parameters: fast enough to train for dozens of epochs in a unit test.
    "tiny": {**_COMMON, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "num_key_value_heads": 2, "intermediate_size": 176},
    # ~32M parameters: big enough that compute dominates in CPU benchmarks. The model-side
    # vocabulary is larger than the tokenizer's so the embedding/head cost looks realistic.
    "bench": {**_COMMON, "hidden_size": 512, "num_hidden_layers": 8, "num_attention_heads": 8,
              "num_key_value_heads": 4, "intermediate_size": 1408, "vocab_size": 8192},
}


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def resolve_size(size: str | dict) -> dict[str, Any]:
    """LlamaConfig keyword arguments for a size name, or for a dict of overrides on "tiny"."""
    if isinstance(size, dict):
        return {**SIZES["tiny"], **size}
    if size not in SIZES:
        raise ModelError(f"unknown tiny-model size {size!r}", where="size",
                         hint=f"use one of: {', '.join(SIZES)}, or a dict of LlamaConfig overrides")
    return dict(SIZES[size])


def model_config(tokenizer, size: str | dict = "tiny"):
    """The ``LlamaConfig`` for ``size``, with special-token ids taken from ``tokenizer``."""
    from transformers import LlamaConfig

    kwargs = resolve_size(size)
    # A multiple of 64 keeps matmul shapes friendly without wasting much.
    kwargs.setdefault("vocab_size", _round_up(len(tokenizer), 64))
    if kwargs["vocab_size"] < len(tokenizer):
        raise ModelError(f"vocab_size {kwargs['vocab_size']} is smaller than the tokenizer ({len(tokenizer)})",
                         where="size", hint=f"use vocab_size >= {len(tokenizer)}")
    ids = special_token_ids(tokenizer)
    return LlamaConfig(**kwargs, bos_token_id=ids["endoftext"], eos_token_id=ids["im_end"],
                       pad_token_id=ids["endoftext"], dtype="float32")


def special_token_ids(tokenizer) -> dict[str, int]:
    """Ids of ``<|endoftext|>`` and ``<|im_end|>`` under short keys."""
    return {"endoftext": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            "im_end": tokenizer.convert_tokens_to_ids("<|im_end|>")}


def _generation_config(tokenizer):
    from transformers import GenerationConfig

    ids = special_token_ids(tokenizer)
    # Stop on either: chat turns end with <|im_end|>, pretraining text with <|endoftext|>.
    return GenerationConfig(bos_token_id=ids["endoftext"], eos_token_id=[ids["im_end"], ids["endoftext"]],
                            pad_token_id=ids["endoftext"])


def init_model(config, seed: int = 0):
    """A randomly initialised ``LlamaForCausalLM`` (float32); the global RNG is left untouched."""
    import torch
    from transformers import LlamaForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.to(torch.float32).eval()


def build_tiny_model(out_dir: str | Path, variant: str = "chat", size: str | dict = "tiny",
                     seed: int = 0) -> Path:
    """Build a tiny model + tokenizer into ``out_dir`` and return it.

    ``variant`` picks the chat template ("chat" or "think"), ``size`` is "tiny", "bench" or a
    dict of LlamaConfig overrides applied to "tiny". The folder is a normal Hugging Face model
    folder (safetensors weights, config, generation config, tokenizer with chat template) and
    is identical byte for byte for the same arguments.
    """
    from tunelab.testing.tokenizer import make_tokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer(variant)
    model = init_model(model_config(tokenizer, size), seed)
    model.generation_config = _generation_config(tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
