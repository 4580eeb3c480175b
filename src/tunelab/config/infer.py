"""How a model answers: backend, sampling defaults and request batching (chat, API, board)."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option


@dataclass
class InferArgs:
    infer_backend: str = option("huggingface", "Generation engine: huggingface (any device, batches "
                                "concurrent requests) or vllm (CUDA, needs the vllm extra).",
                                choices=("huggingface", "vllm"))
    max_new_tokens: int = option(1024, "Most tokens generated per answer (a request's max_tokens "
                                 "overrides it).")
    do_sample: bool = option(True, "Sample; false means greedy decoding (temperature is ignored).")
    temperature: float = option(0.95, "Sampling temperature; 0 means greedy.")
    top_p: float = option(0.7, "Nucleus sampling: keep the smallest set of tokens with this "
                          "total probability.")
    top_k: int = option(50, "Keep only the k most likely tokens (0 disables).")
    repetition_penalty: float = option(1.0, "Penalise tokens already present (>1 discourages "
                                       "repeats; 1 disables).")
    max_batch_size: int = option(16, "huggingface backend: most concurrent requests in one "
                                 "batched generate call.")
    batch_wait_ms: float = option(10.0, "huggingface backend: how long the first waiting request "
                                  "waits for others to join its batch.")
    batch_slice_tokens: int = option(32, "huggingface backend: while other requests wait, a "
                                     "running batch yields after this many new tokens so they "
                                     "can join it (fair scheduling); 0 never yields.")
    max_prompt_tokens: int = option(0, "Limit: the longest prompt a request may send, in tokens "
                                    "(400 beyond); 0 means the model's context length.")
    max_answer_tokens: int = option(0, "Limit: the largest max_tokens a request may ask for per "
                                    "answer (400 beyond); 0 means the model's context length.")
    max_choices: int = option(16, "Limit: the most answers one request may ask for: n, times "
                              "the prompts of a completions request (400 beyond).")
    max_request_bytes: int = option(0, "API limit: the largest request body in bytes (413 "
                                    "beyond); 0 means 16 bytes per token of the model's context, "
                                    "at least 1 MiB.")
    infer_device: str = option("auto", "Device for inference: auto (cuda when available), cpu, "
                               "cuda, cuda:N.")
    vllm_maxlen: int = option(4096, "vllm: maximum sequence length (prompt + answer).")
    vllm_gpu_util: float = option(0.9, "vllm: fraction of GPU memory vLLM may take.")
    vllm_enforce_eager: bool = option(False, "vllm: disable CUDA graphs (less memory, slower).")
    vllm_max_lora_rank: int = option(32, "vllm: the largest LoRA rank among served adapters.")
