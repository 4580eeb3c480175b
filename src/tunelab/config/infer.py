"""How a model answers: backend, sampling defaults and request batching (chat, API, board)."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option

HF_BACKEND = {"infer_backend": ("huggingface",)}
VLLM = {"infer_backend": ("vllm",)}


@dataclass
class InferArgs:
    infer_backend: str = option("huggingface", "Generation engine: huggingface (any device, batches "
                                "concurrent requests) or vllm (CUDA, needs the vllm extra).",
                                choices=("huggingface", "vllm"))
    max_new_tokens: int = option(1024, "Most tokens generated per answer (a request's max_tokens "
                                 "overrides it).", min=1)
    do_sample: bool = option(True, "Sample; false means greedy decoding (temperature is ignored).")
    temperature: float = option(0.95, "Sampling temperature; 0 means greedy.", min=0, max=2)
    top_p: float = option(0.7, "Nucleus sampling: keep the smallest set of tokens with this "
                          "total probability.", min=0, max=1, min_exclusive=True)
    top_k: int = option(50, "Keep only the k most likely tokens (0 disables).", min=0)
    repetition_penalty: float = option(1.0, "Penalise tokens already present (>1 discourages "
                                       "repeats; 1 disables).", min=0, min_exclusive=True)
    max_batch_size: int = option(16, "huggingface backend: most concurrent requests in one "
                                 "batched generate call.", min=1, when=HF_BACKEND)
    batch_wait_ms: float = option(10.0, "huggingface backend: how long the first waiting request "
                                  "waits for others to join its batch.", min=0, when=HF_BACKEND)
    infer_device: str = option("auto", "Device for inference: auto (cuda when available), cpu, "
                               "cuda, cuda:N.")
    vllm_maxlen: int = option(4096, "vllm: maximum sequence length (prompt + answer).", min=1, when=VLLM)
    vllm_gpu_util: float = option(0.9, "vllm: fraction of GPU memory vLLM may take.", min=0, max=1,
                                   min_exclusive=True, when=VLLM)
    vllm_enforce_eager: bool = option(False, "vllm: disable CUDA graphs (less memory, slower).",
                                       when=VLLM)
    vllm_max_lora_rank: int = option(32, "vllm: the largest LoRA rank among served adapters.", min=1,
                                     when=VLLM)
