"""What is trained: the stage and the fine-tuning method (LoRA, DoRA, freeze, full)."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option
from tunelab.train.stages import IMPLEMENTED_STAGES, stage_help

LORA = {"finetuning_type": ("lora",)}
FREEZE = {"finetuning_type": ("freeze",)}


@dataclass
class MethodArgs:
    stage: str = option(
        "sft", f"Training stage: {stage_help()}.",
        help_zh=f"训练阶段：{stage_help(zh=True)}。",
        choices=IMPLEMENTED_STAGES)
    do_train: bool = option(True, "Run training (kept for LLaMA-Factory recipes).",
                            help_zh="执行训练（为兼容 LLaMA-Factory 配置而保留）。")
    do_eval: bool = option(False, "Evaluate on the eval split after training.",
                           help_zh="训练结束后在验证集上评估。")
    do_predict: bool = option(False, "Generate predictions (kept for LLaMA-Factory recipes; "
                              "training ignores it).",
                              help_zh="生成预测（为兼容 LLaMA-Factory 配置而保留；训练时忽略）。")
    finetuning_type: str = option(
        "lora", "lora (adapters), freeze (train the last layers), full.",
        help_zh="微调方式：lora（适配器）、freeze（只训练最后几层）、full（全参数）。",
        choices=("lora", "freeze", "full"))
    lora_rank: int = option(8, "LoRA rank r.", help_zh="LoRA 的秩 r。", min=1, group="lora",
                            when=LORA)
    lora_alpha: int | None = option(None, "LoRA scale alpha. Unset: 2 x lora_rank.",
                                    help_zh="LoRA 缩放系数 alpha。不设置：2 × lora_rank。", min=1,
                                    group="lora", when=LORA)
    lora_dropout: float = option(0.0, "Dropout on the LoRA path.", help_zh="LoRA 支路上的 dropout。",
                                 min=0, max=1, max_exclusive=True, group="lora", when=LORA)
    lora_target: list[str] = option(
        None, "Modules that get LoRA: 'all' (every linear layer but the head) or names like "
        "q_proj,v_proj.", help_zh="加 LoRA 的模块：all（除输出头外的所有线性层）或 q_proj,v_proj 这样的名字。",
        factory=lambda: ["all"], group="lora", when=LORA)
    additional_target: list[str] | None = option(
        None, "Modules trained fully and saved beside the adapter, e.g. embed_tokens,lm_head.",
        help_zh="完整训练并与适配器一起保存的模块，如 embed_tokens,lm_head。", group="lora", when=LORA)
    use_dora: bool = option(False, "Weight-decomposed LoRA (DoRA).",
                            help_zh="权重分解的 LoRA（DoRA）。", group="lora", when=LORA)
    use_rslora: bool = option(False, "Rank-stabilised LoRA scaling (alpha / sqrt(r)).",
                              help_zh="秩稳定的 LoRA 缩放（alpha / sqrt(r)）。", group="lora", when=LORA)
    pissa_init: bool = option(False, "Initialise LoRA from principal singular vectors (PiSSA).",
                              help_zh="用主奇异向量初始化 LoRA（PiSSA）。", group="lora", when=LORA)
    create_new_adapter: bool = option(
        False, "With adapter_name_or_path: train a new adapter on top of the merged old ones "
        "instead of continuing them.",
        help_zh="配合 adapter_name_or_path：在合并后的旧适配器之上训练一个新适配器，而不是继续训练旧的。",
        group="lora", when=LORA)
    freeze_trainable_layers: int = option(
        2, "freeze: train the last N layers (negative: the first N).",
        help_zh="freeze：训练最后 N 层（负数：最前面的 N 层）。", group="freeze", when=FREEZE)
    freeze_trainable_modules: list[str] = option(
        None, "freeze: module names inside the trainable layers, or 'all'.",
        help_zh="freeze：可训练层中要训练的模块名，或 all。", factory=lambda: ["all"],
        group="freeze", when=FREEZE)
    freeze_extra_modules: list[str] | None = option(
        None, "freeze: extra top-level modules to train, e.g. embed_tokens,norm.",
        help_zh="freeze：额外训练的顶层模块，如 embed_tokens,norm。", group="freeze", when=FREEZE)
    chunked_loss: bool = option(
        True, "Compute the loss from hidden states in chunks, only where labels are, without the "
        "full logits tensor (same loss, far less memory). Models whose logits are soft-capped or "
        "scaled, and multi-process runs, use the model's own loss.",
        help_zh="只在有标签的位置分块由隐状态计算损失，不生成完整 logits 张量（损失相同，显存少得多）。"
        "logits 带软截断或缩放的模型以及多进程训练使用模型自带的损失。", group="training")
    gradient_checkpointing: bool | str = option(
        "auto", "Recompute activations in backward to save memory (~30% slower). auto: on only "
        "when the memory estimate says the step does not fit the GPU without it (off on CPU); "
        "offload: on, and the checkpointed layer inputs wait in CPU RAM (torch's save_on_cpu).",
        help_zh="在反向时重新计算激活以节省显存（约慢 30%）。auto：仅当显存估算表明不开启就放不下时才开启"
        "（CPU 上关闭）；offload：开启，并把检查点保存的层输入放在 CPU 内存（torch 的 save_on_cpu）。",
        choices=(True, False, "auto", "offload"), aliases=("activation_checkpointing",),
        group="training")
    disable_gradient_checkpointing: bool = option(
        False, "LLaMA-Factory's switch: true means gradient_checkpointing: false.",
        help_zh="LLaMA-Factory 的开关：true 即 gradient_checkpointing: false。", group="training")
    use_unsloth_gc: bool = option(
        False, "LLaMA-Factory's offloaded checkpointing: true means gradient_checkpointing: offload.",
        help_zh="LLaMA-Factory 的卸载式检查点：true 即 gradient_checkpointing: offload。", group="training")


def checkpointing_setting(method: MethodArgs) -> bool | str:
    """gradient_checkpointing as asked, with LLaMA-Factory's two switches folded in."""
    if method.use_unsloth_gc:
        return "offload"
    if method.disable_gradient_checkpointing:
        return False
    return method.gradient_checkpointing
