"""Model FLOPs utilisation of a training run: the FLOPs the model needs per token (not what
recomputation adds: checkpointing does not raise MFU) over the GPU's dense bf16 peak.

Per token, a forward pass costs 2 FLOPs per weight of a matmul (every linear layer and the LM
head; the input embedding is a lookup) plus causal attention, 2 x layers x hidden x the mean row
length (QK^T and AV over half the row on average, 2 FLOPs each). Full fine-tuning adds the
backward pass at twice the forward (input and weight gradients): x3. LoRA's backward computes
input gradients only through the frozen weights: x2 (the adapters themselves are negligible).
"""

from __future__ import annotations

import json
from pathlib import Path

# Dense bf16 tensor-core peaks (TFLOPS, no sparsity) by a substring of the device name.
PEAK_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "GH200": 989.0,
               "B200": 2250.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0, "L40": 181.0,
               "L4": 121.0, "A10G": 70.0, "A10": 125.0, "RTX 4090": 165.2, "RTX 3090": 71.0,
               "A6000": 155.0}


def peak_tflops(device_name: str) -> float | None:
    for key, value in PEAK_TFLOPS.items():  # longer keys first where one contains another
        if key in device_name:
            return value
    return None


def flops_per_token(model_dir: str | Path, method: str, mean_row_tokens: float) -> float:
    """Training FLOPs per token of the model in ``model_dir`` (its config.json)."""
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    d, layers = config["hidden_size"], config["num_hidden_layers"]
    heads, kv_heads = config["num_attention_heads"], config.get("num_key_value_heads") or config["num_attention_heads"]
    head_dim = config.get("head_dim") or d // heads
    ff, vocab = config["intermediate_size"], config["vocab_size"]
    per_layer = d * heads * head_dim * 2 + d * kv_heads * head_dim * 2 + 3 * d * ff
    matmul_weights = layers * per_layer + vocab * d
    forward = 2 * matmul_weights + 2 * layers * heads * head_dim * mean_row_tokens
    return forward * (3 if method == "full" else 2)


def mfu(tokens_per_s: float, flops: float, peak: float | None) -> float | None:
    return None if not peak else round(tokens_per_s * flops / (peak * 1e12), 4)
