"""Random-init models of real shapes for the GPU benchmark (no hub): Qwen2.5-0.5B and -1.5B
configurations (hidden size, layers, heads, KV heads, MLP width, 151,936-token vocabulary) with
random bf16 weights and the built-in bench tokenizer (ChatML, 8,192 tokens; its ids fit the
larger vocabulary). Shapes set the cost of a step; weights do not. ::

    python bench/gpu_models.py 0.5b OUT_DIR      # writes the folder once, prints its path
"""

from __future__ import annotations

import sys
from pathlib import Path

SIZES = {
    "0.5b": {"hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
             "num_key_value_heads": 2, "intermediate_size": 4864, "tie_word_embeddings": True},
    "1.5b": {"hidden_size": 1536, "num_hidden_layers": 28, "num_attention_heads": 12,
             "num_key_value_heads": 2, "intermediate_size": 8960, "tie_word_embeddings": True},
}
COMMON = {"vocab_size": 151936, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
          "rms_norm_eps": 1e-6, "hidden_act": "silu", "use_sliding_window": False}


def build(size: str, out: Path) -> Path:
    """The model folder for ``size`` (built once; a finished folder has ``config.json``)."""
    if size not in SIZES:
        raise SystemExit(f"unknown size {size!r}; sizes: {', '.join(SIZES)}")
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from tunelab.model import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("tunelab/bench-chat"))
    config = Qwen2Config(**COMMON, **SIZES[size], bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         dtype="bfloat16")
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    partial = out.with_name(out.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(out)
    return out


def parameter_count(size: str) -> int:
    """Parameters of ``size`` (tied embeddings counted once), from the shapes alone."""
    s = {**COMMON, **SIZES[size]}
    d, layers, ff = s["hidden_size"], s["num_hidden_layers"], s["intermediate_size"]
    kv = d // s["num_attention_heads"] * s["num_key_value_heads"]
    attention = d * d * 2 + d * kv * 2 + d + kv * 2  # q, o; k, v; q/k/v biases
    return s["vocab_size"] * d + layers * (attention + 3 * d * ff + 2 * d) + d


if __name__ == "__main__":
    print(build(sys.argv[1], Path(sys.argv[2]).expanduser()))
