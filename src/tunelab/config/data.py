"""Which data to train on and how it becomes token ids."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option


def template_names() -> tuple[str, ...]:
    """The named templates data/ can install (read when the spec is built)."""
    from tunelab.data.templates import TEMPLATE_NAMES

    return tuple(TEMPLATE_NAMES)


@dataclass
class DataArgs:
    dataset: list[str] | None = option(
        None, "Training dataset names from dataset_info.json (comma-separated).",
        help_zh="训练数据集名称，来自 dataset_info.json（逗号分隔）。")
    eval_dataset: list[str] | None = option(
        None, "Evaluation dataset names (comma-separated).", help_zh="评估数据集名称（逗号分隔）。")
    dataset_dir: str = option("data", "Folder that holds dataset_info.json and the data files.",
                              help_zh="存放 dataset_info.json 和数据文件的文件夹。")
    template: str | None = option(
        None, "Chat template. Unset: the tokenizer's own template (what is trained is what is "
        "served). A name (one of the choices) replaces it and is saved with the run.",
        help_zh="对话模板。不设置：使用分词器自带的模板（训练与部署一致）。"
        "填写名称（可选值之一）则替换它，并随运行一起保存。", choices=template_names)
    cutoff_len: int = option(2048, "Maximum tokens per sample; longer samples are truncated.",
                             help_zh="每个样本的最大 token 数；更长的样本会被截断。", min=8)
    max_samples: int | None = option(None, "Use at most this many rows from each dataset.",
                                     help_zh="每个数据集最多使用多少行。", min=1)
    val_size: float = option(
        0.0, "Hold out this fraction (<1) or this many rows (>=1) for evaluation.",
        help_zh="留出用于评估的比例（小于 1）或行数（大于等于 1 的整数）。", min=0)
    packing: bool | None = option(
        None, "Concatenate samples into full rows of cutoff_len without cross-contamination "
        "(per-sample position ids). Unset: on for pt, off for sft (whose batches are padding-free).",
        help_zh="把样本拼接成长度为 cutoff_len 的整行，样本之间互不可见（每个样本独立的位置编号）。"
        "不设置：pt 开启，sft 关闭（sft 的批次本身无填充）。",
        when={"stage": ("pt", "sft")})
    padding_free: bool = option(
        True, "Without packing: concatenate each batch's samples into one row with per-sample "
        "position ids instead of padding them (same samples per step, no pad tokens computed, "
        "samples never see each other).",
        help_zh="不打包时：把每批样本拼成一行并使用各自的位置编号，而不是填充（每步样本相同，"
        "不计算填充 token，样本之间互不可见）。")
    neat_packing: bool = option(
        False, "Packing that keeps samples apart (always true in TuneLab; kept for LLaMA-Factory "
        "recipes).", help_zh="样本互不可见的打包（TuneLab 中总是如此；为兼容 LLaMA-Factory 配置而保留）。")
    train_on_prompt: bool = option(False, "Also train on prompt tokens, not only assistant turns.",
                                   help_zh="提示部分的 token 也参与训练，而不只是助手回复。")
    mask_history: bool = option(False, "Train only on the last assistant turn of each conversation.",
                                help_zh="只训练每段对话中最后一轮助手回复。")
    preprocessing_num_workers: int | None = option(None, "Processes used to tokenise.",
                                                   help_zh="分词所用的进程数。", min=1)
    tokenized_path: str | None = option(
        None, "Save the tokenised dataset here, or load it if present.",
        help_zh="把分词后的数据集保存到这里；若已存在则直接加载。")
    overwrite_cache: bool = option(False, "Tokenise again even if a cached result matches.",
                                   help_zh="即使缓存匹配也重新分词。")
    enable_thinking: bool = option(
        True, "For reasoning templates: let the model think (<think>...). Applied identically in "
        "training and in chat.", help_zh="推理类模板：允许模型思考（<think>…）。训练和对话中的处理完全一致。")
    default_system: str | None = option(None, "System prompt used when a sample has none.",
                                        help_zh="样本没有系统提示时使用的系统提示。")
    placeholders: dict | None = option(
        None, "Values for {{name}}-style placeholders in data, e.g. {name: Tuney, author: Lab}. "
        "Override one with placeholders.name=Tuney.",
        help_zh="数据中 {{name}} 形式占位符的取值，如 {name: Tuney, author: Lab}。"
        "可用 placeholders.name=Tuney 单独覆盖。")
    streaming: bool = option(
        False, "Stream the dataset instead of loading it (not yet supported; accepted for "
        "LLaMA-Factory recipes and rejected with a message).",
        help_zh="以流式读取数据集而非整体加载（尚不支持；为兼容 LLaMA-Factory 配置而接受，并给出提示后拒绝）。")
