"""How a trained model is exported: merged, sharded, verified, and handed to other runtimes."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option
from tunelab.config.model import DTYPES

GGUF_TYPES = ("none", "f16", "q8_0", "f32", "bf16")


@dataclass
class ExportArgs:
    export_dir: str | None = option(
        None, "Folder to write the standalone model to. It must be empty or absent unless "
        "export_overwrite is set; nothing appears there until the export is complete.",
        help_zh="写入独立模型的文件夹。除非设置 export_overwrite，它必须为空或不存在；导出完成前不会出现任何内容。")
    export_size: str | float = option(
        "5GB", "Largest safetensors shard: a number of gigabytes (1, 1.88) or a size with a unit "
        "(500MB, 2GB, 1GiB).",
        help_zh="safetensors 分片的最大大小：GB 数（1、1.88）或带单位的大小（500MB、2GB、1GiB）。")
    export_device: str = option(
        "cpu", "Where to merge: cpu, or auto (a GPU when there is one).",
        help_zh="在哪里合并：cpu，或 auto（有 GPU 时用 GPU）。", choices=("cpu", "auto"))
    export_legacy_format: bool = option(
        False, "Write pytorch_model*.bin instead of safetensors.",
        help_zh="写出 pytorch_model*.bin 而不是 safetensors。")
    export_hub_model_id: str | None = option(
        None, "Also upload the export to this hub repository (e.g. me/my-model; created private "
        "if it does not exist).", help_zh="同时上传到该 Hub 仓库（如 me/my-model；不存在时创建为私有仓库）。")
    export_dtype: str = option(
        "auto", "Weight dtype of the export. auto: the base model's own dtype (its config.json), "
        "so a bf16 model stays bf16.",
        help_zh="导出权重的数据类型。auto：基础模型自身的类型（见其 config.json），bf16 模型仍为 bf16。",
        choices=DTYPES)
    export_verify: bool = option(
        True, "Reload the export and compare its logits with base+adapter on a few prompts (a "
        "reward model: its rewards of a few texts).",
        help_zh="重新加载导出的模型，在几个提示上与 基础模型+适配器 比较 logits（奖励模型：比较几段文本的奖励）。")
    export_verify_tolerance: float | None = option(
        None, "Largest allowed logit difference between the reloaded export and base+adapter, "
        "relative to the largest reference logit (a reward model: reward difference, relative "
        "to the largest reward). Unset: by export dtype (float32 1e-4, "
        "float16 0.02, bfloat16 0.1). On CPU the merge itself is also checked, in float32, to 1e-4.",
        help_zh="重新加载的导出模型与 基础模型+适配器 之间允许的最大 logit 差（相对最大参考 logit；"
        "奖励模型：奖励差，相对最大奖励）。"
        "不设置：按导出类型（float32 1e-4、float16 0.02、bfloat16 0.1）。在 CPU 上还会以 float32 "
        "检查合并本身，容差 1e-4。", min=0, min_exclusive=True)
    export_gguf: list[str] | None = option(
        None, "Also write GGUF files for llama.cpp/Ollama (llama-family models, not reward "
        "models): f16, q8_0, f32, bf16 (comma-separated), or none.",
        help_zh="同时写出供 llama.cpp/Ollama 使用的 GGUF 文件（llama 系列模型，奖励模型除外）：f16、q8_0、f32、bf16（逗号分隔）或 none。",
        choices=GGUF_TYPES)
    export_modelfile: bool = option(
        True, "Write an Ollama Modelfile that uses the model's chat template (never for a "
        "reward model, which Ollama cannot run).",
        help_zh="写出使用该模型对话模板的 Ollama Modelfile（奖励模型不写：Ollama 无法运行它）。")
    export_overwrite: bool = option(
        False, "Replace a non-empty export_dir (never a run or the model being exported).",
        help_zh="替换非空的 export_dir（但绝不替换训练运行或正在导出的模型）。")
    export_template_override: bool = option(
        False, "Let the recipe's template replace the chat template the model was trained with "
        "(saved in its run). Without it a differing template is ignored, with a warning.",
        help_zh="允许配方中的 template 替换模型训练时使用（并随运行保存）的对话模板。"
        "不设置时，不同的模板会被忽略并给出警告。")
