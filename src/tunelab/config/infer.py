"""How a model answers: backend, sampling defaults and request batching (chat, API, board).

The sampling bounds declared here are the ones per-request parameters (``infer/params.py``) and
the API's request schemas (``serve/schemas.py``) read, so a recipe and a request agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option

HF_BACKEND = {"infer_backend": ("huggingface",)}
VLLM = {"infer_backend": ("vllm",)}


@dataclass
class InferArgs:
    infer_backend: str = option(
        "huggingface", "Generation engine: huggingface (any device, batches concurrent requests) "
        "or vllm (CUDA, needs the vllm extra).",
        help_zh="生成引擎：huggingface（任意设备，合并并发请求成批）或 vllm（CUDA，需要 vllm 附加依赖）。",
        choices=("huggingface", "vllm"))
    max_new_tokens: int = option(
        1024, "Most tokens generated per answer (a request's max_tokens overrides it).",
        help_zh="每个回答最多生成的 token 数（请求中的 max_tokens 会覆盖它）。", min=1)
    do_sample: bool = option(
        True, "Sample; false means greedy decoding (temperature is ignored).",
        help_zh="采样生成；false 表示贪心解码（忽略 temperature）。")
    temperature: float = option(0.95, "Sampling temperature; 0 means greedy.",
                                help_zh="采样温度；0 表示贪心解码。", min=0, max=2)
    top_p: float = option(
        0.7, "Nucleus sampling: keep the smallest set of tokens with this total probability.",
        help_zh="核采样：保留累计概率达到该值的最少 token 集合。", min=0, max=1, min_exclusive=True)
    top_k: int = option(50, "Keep only the k most likely tokens (0 disables).",
                        help_zh="只保留概率最高的 k 个 token（0 表示不限制）。", min=0)
    repetition_penalty: float = option(
        1.0, "Penalise tokens already present (>1 discourages repeats; 1 disables).",
        help_zh="惩罚已出现的 token（大于 1 抑制重复；1 表示不惩罚）。", min=0, min_exclusive=True)
    max_batch_size: int = option(
        16, "huggingface backend: most concurrent requests in one batched generate call.",
        help_zh="huggingface 后端：一次批量生成最多合并的并发请求数。", min=1, when=HF_BACKEND)
    batch_wait_ms: float = option(
        10.0, "huggingface backend: how long the first waiting request waits for others to join "
        "its batch.", help_zh="huggingface 后端：第一个请求等待其他请求加入同一批的毫秒数。",
        min=0, when=HF_BACKEND)
    infer_device: str = option(
        "auto", "Device for inference: auto (cuda when available), cpu, cuda, cuda:N.",
        help_zh="推理设备：auto（有 CUDA 时用 CUDA）、cpu、cuda、cuda:N。")
    vllm_maxlen: int = option(4096, "vllm: maximum sequence length (prompt + answer).",
                              help_zh="vllm：最大序列长度（提示 + 回答）。", min=1, when=VLLM)
    vllm_gpu_util: float = option(
        0.9, "vllm: fraction of GPU memory vLLM may take.", help_zh="vllm：vLLM 可占用的显存比例。",
        min=0, max=1, min_exclusive=True, when=VLLM)
    vllm_enforce_eager: bool = option(
        False, "vllm: disable CUDA graphs (less memory, slower).",
        help_zh="vllm：禁用 CUDA Graph（省显存，但更慢）。", when=VLLM)
    vllm_max_lora_rank: int = option(
        32, "vllm: the largest LoRA rank among served adapters.",
        help_zh="vllm：所服务适配器中最大的 LoRA 秩。", min=1, when=VLLM)
