"""Which model to load and how: weights, adapters, dtype, attention, quantization."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option

DTYPES = ("auto", "bfloat16", "float16", "float32")
FOUR_BIT = {"quantization_bit": (4,)}


@dataclass
class ModelArgs:
    model_name_or_path: str | None = option(
        None, "Local folder or hub id of the base model. 'tunelab/tiny-chat' and "
        "'tunelab/tiny-think' are the built-in tiny models, built offline on first use.",
        help_zh="基础模型的本地文件夹或 Hub ID。'tunelab/tiny-chat' 和 'tunelab/tiny-think' "
        "是内置的微型模型，首次使用时离线构建。")
    adapter_name_or_path: list[str] | None = option(
        None, "One or more adapter folders (comma-separated) to start from. Training continues "
        "from these weights with a fresh optimizer: a NEW run. To continue the SAME run, use "
        "resume_from_checkpoint instead.",
        help_zh="作为起点的一个或多个适配器文件夹（逗号分隔）。训练从这些权重出发、使用新的优化器："
        "这是一次新的运行。要继续同一次运行，请改用 resume_from_checkpoint。")
    trust_remote_code: bool = option(
        False, "Allow model/tokenizer code from the model folder to run.",
        help_zh="允许运行模型文件夹中自带的模型/分词器代码。")
    torch_dtype: str = option(
        "auto", "Weight dtype: auto picks bf16 on GPUs that support it, else the checkpoint's "
        "dtype on GPU and fp32 on CPU.",
        help_zh="权重数据类型：auto 在支持的 GPU 上用 bf16，其他 GPU 上用检查点自身的类型，CPU 上用 fp32。",
        choices=DTYPES, aliases=("infer_dtype", "dtype"))
    flash_attn: str = option(
        "auto", "Attention kernel: auto (FlashAttention 2 when installed on GPU, else sdpa), "
        "sdpa, fa2, or disabled (eager).",
        help_zh="注意力实现：auto（GPU 上装有 FlashAttention 2 时用它，否则用 sdpa）、sdpa、fa2 或 disabled（eager）。",
        choices=("auto", "sdpa", "fa2", "disabled", "eager"))
    quantization_bit: int | None = option(
        None, "Load the base in 4 or 8 bits with bitsandbytes (QLoRA).",
        help_zh="用 bitsandbytes 以 4 或 8 比特加载基础模型（QLoRA）。", choices=(4, 8))
    quantization_type: str = option("nf4", "4-bit data type.", help_zh="4 比特量化的数据类型。",
                                    choices=("nf4", "fp4"), when=FOUR_BIT)
    double_quantization: bool = option(
        True, "Quantize the 4-bit quantization constants too.",
        help_zh="对 4 比特量化常数再做一次量化。", when=FOUR_BIT)
    use_fast_tokenizer: bool = option(True, "Use the fast (Rust) tokenizer.",
                                      help_zh="使用快速（Rust）分词器。")
    cache_dir: str | None = option(None, "Where hub downloads are cached.",
                                   help_zh="Hub 下载内容的缓存位置。")
    model_revision: str = option("main", "Hub revision (branch, tag or commit) of the model.",
                                 help_zh="模型在 Hub 上的版本（分支、标签或提交）。")
