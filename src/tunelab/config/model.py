"""Which model to load and how: weights, adapters, dtype, attention, quantization."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option


@dataclass
class ModelArgs:
    model_name_or_path: str | None = option(
        None, "Local folder or hub id of the base model. 'tunelab/tiny-chat' and "
        "'tunelab/tiny-think' are the built-in tiny models, built offline on first use.")
    adapter_name_or_path: list[str] | None = option(
        None, "One or more adapter folders (comma-separated) to start from. Training continues "
        "from these weights with a fresh optimizer: a NEW run. To continue the SAME run, use "
        "resume_from_checkpoint instead.")
    trust_remote_code: bool = option(False, "Allow model/tokenizer code from the model folder to run.")
    torch_dtype: str = option("auto", "Weight dtype: auto picks bf16 on GPUs that support it, else "
                              "the checkpoint's dtype on GPU and fp32 on CPU.",
                              choices=("auto", "bfloat16", "float16", "float32"),
                              aliases=("infer_dtype", "dtype"))
    flash_attn: str = option("auto", "Attention kernel: auto (FlashAttention 2 when installed on GPU, "
                             "else sdpa), sdpa, fa2, or disabled (eager).",
                             choices=("auto", "sdpa", "fa2", "disabled", "eager"))
    quantization_bit: int | None = option(None, "Load the base in 4 or 8 bits with bitsandbytes (QLoRA).",
                                          choices=(4, 8))
    quantization_type: str = option("nf4", "4-bit data type.", choices=("nf4", "fp4"),
                                     when={"quantization_bit": (4,)})
    double_quantization: bool = option(True, "Quantize the 4-bit quantization constants too.",
                                          when={"quantization_bit": (4,)})
    use_fast_tokenizer: bool = option(True, "Use the fast (Rust) tokenizer.")
    cache_dir: str | None = option(None, "Where hub downloads are cached.")
    model_revision: str = option("main", "Hub revision (branch, tag or commit) of the model.")
