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
    batching: str = option(
        "continuous", "huggingface backend: continuous (a new request joins the running batch at "
        "the next decoding step) or dynamic (requests that arrive together share one generate "
        "call; later ones wait for it to yield or end).",
        help_zh="huggingface 后端：continuous（新请求在下一个解码步加入正在运行的批次）或 dynamic"
        "（同时到达的请求共享一次 generate 调用，之后到达的要等它让出或结束）。",
        choices=("continuous", "dynamic"), when=HF_BACKEND)
    max_batch_size: int = option(
        16, "huggingface backend: most answers decoded together in one batch.",
        help_zh="huggingface 后端：一个批次中同时解码的最多回答数。", min=1, when=HF_BACKEND)
    batch_wait_ms: float = option(
        10.0, "huggingface backend: how long the first request to an idle engine waits for others "
        "to join its batch.", help_zh="huggingface 后端：空闲时第一个请求等待其他请求加入同一批的毫秒数。",
        min=0, when=HF_BACKEND)
    batch_slice_tokens: int = option(
        32, "huggingface backend: fair scheduling while requests wait. dynamic: the running batch "
        "yields after this many new tokens so they can join it; continuous: when the batch is full, "
        "an answer that ran this many tokens gives its place up and queues again. 0 never yields.",
        help_zh="huggingface 后端：有请求等待时的公平调度。dynamic：正在运行的批次每生成这么多新 token "
        "就让出一次以便它们加入；continuous：批次已满时，已生成这么多 token 的回答让出位置并重新排队。"
        "0 表示从不让出。", min=0, when=HF_BACKEND)
    max_prompt_tokens: int = option(
        0, "Limit: the longest prompt a request may send, in tokens (400 beyond); 0 means the "
        "model's context length.",
        help_zh="限制：请求可发送的最长提示（token 数，超出返回 400）；0 表示模型的上下文长度。", min=0)
    max_answer_tokens: int = option(
        0, "Limit: the largest max_tokens a request may ask for per answer (400 beyond); 0 means "
        "the model's context length.",
        help_zh="限制：请求每个回答可要求的最大 max_tokens（超出返回 400）；0 表示模型的上下文长度。", min=0)
    max_choices: int = option(
        16, "Limit: the most answers one request may ask for: n, times the prompts of a "
        "completions request (400 beyond).",
        help_zh="限制：一个请求最多可要求的回答数：n 乘以提示数（超出返回 400）。", min=1)
    max_request_bytes: int = option(
        0, "API limit: the largest request body in bytes (413 beyond); 0 means 16 bytes per token "
        "of the model's context, at least 1 MiB.",
        help_zh="API 限制：请求体的最大字节数（超出返回 413）；0 表示模型上下文每个 token 16 字节，"
        "至少 1 MiB。", min=0)
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
