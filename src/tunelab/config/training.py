"""The Hugging Face ``TrainingArguments`` keys TuneLab exposes, declared like our own sections.

``TrainingArgs`` is a declaration table, not a section of :class:`~tunelab.config.schema.Config`:
the recipe's values for these keys land in ``cfg.training`` (a dict handed to
``TrainingArguments``), so a key the recipe does not set keeps Hugging Face's behaviour. Defaults
are Hugging Face's except where TuneLab chooses differently (``TRAINING_DEFAULTS``); a test checks
each against the installed transformers. Every other ``TrainingArguments`` key is still accepted
and passed through, typed by transformers' own annotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunelab.config.fields import option

# Defaults we choose differently from Hugging Face's TrainingArguments (always passed on).
TRAINING_DEFAULTS: dict[str, Any] = {
    "report_to": ["none"],
    "logging_steps": 10,
    "save_steps": 500,
    "remove_unused_columns": False,
}

# Keys transformers dropped with no replacement; accepted so old recipes run, and reported.
DROPPED_TRAINING_KEYS = {"logging_dir": "transformers 5 writes TensorBoard logs under output_dir"}

# HF TrainingArguments keys that a TuneLab section owns (ours wins, and train/ passes it on).
OWNED_ELSEWHERE = {"output_dir", "run_name", "resume_from_checkpoint", "gradient_checkpointing",
                   "do_train", "do_eval", "do_predict", "overwrite_output_dir"}

SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
              "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr",
              "cosine_warmup_with_min_lr", "warmup_stable_decay", "greedy")
OPTIMIZERS = (
    "adamw_torch", "adamw_torch_fused", "adamw_torch_xla", "adamw_torch_npu_fused", "adafactor",
    "adamw_anyprecision", "adamw_torch_4bit", "adamw_torch_8bit", "ademamix", "sgd", "adagrad",
    "adamw_bnb_8bit", "adamw_8bit", "ademamix_8bit", "lion_8bit", "lion_32bit", "paged_adamw_32bit",
    "paged_adamw_8bit", "paged_ademamix_32bit", "paged_ademamix_8bit", "paged_lion_32bit",
    "paged_lion_8bit", "rmsprop", "rmsprop_bnb", "rmsprop_bnb_8bit", "rmsprop_bnb_32bit",
    "galore_adamw", "galore_adamw_8bit", "galore_adafactor", "galore_adamw_layerwise",
    "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise", "lomo", "adalomo", "grokadamw",
    "schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd", "apollo_adamw",
    "apollo_adamw_layerwise", "stable_adamw")
SEED_MAX = 2**32 - 1  # numpy's seed range; transformers seeds numpy with the same value


@dataclass
class TrainingArgs:
    learning_rate: float = option(
        5e-5, "Peak learning rate of the optimizer.", help_zh="优化器的峰值学习率。", min=0)
    num_train_epochs: float = option(
        3.0, "Passes over the training data (fractions allowed); max_steps > 0 wins over it.",
        help_zh="训练数据的遍历轮数（可为小数）；max_steps 大于 0 时以 max_steps 为准。", min=0)
    max_steps: int = option(
        -1, "Total optimizer steps; -1 means use num_train_epochs.",
        help_zh="优化器总步数；-1 表示按 num_train_epochs 计算。", min=-1)
    per_device_train_batch_size: int = option(
        8, "Samples per device in each forward pass.", help_zh="每个设备每次前向计算的样本数。",
        min=1)
    per_device_eval_batch_size: int = option(
        8, "Samples per device in each evaluation pass.", help_zh="评估时每个设备每批的样本数。",
        min=1)
    gradient_accumulation_steps: int = option(
        1, "Forward passes whose gradients add up to one optimizer step (effective batch = "
        "per-device batch x this x devices).",
        help_zh="累积多少次前向的梯度再更新一次参数（有效批大小 = 单卡批大小 × 此值 × 设备数）。",
        min=1)
    lr_scheduler_type: str = option(
        "linear", "How the learning rate changes over the run.", help_zh="学习率随训练变化的方式。",
        choices=SCHEDULERS)
    warmup_steps: float = option(
        0.0, "Steps of linear warm-up from 0 to the learning rate; a value below 1 is a fraction "
        "of all steps (warmup_ratio is read as this).",
        help_zh="学习率从 0 线性升到设定值的步数；小于 1 时表示占总步数的比例（warmup_ratio 按此处理）。",
        min=0, aliases=("warmup_ratio",))
    weight_decay: float = option(0.0, "Decoupled weight decay of AdamW.",
                                 help_zh="AdamW 的权重衰减系数。", min=0)
    max_grad_norm: float = option(1.0, "Clip the gradient norm to this value (0 disables).",
                                  help_zh="梯度范数裁剪阈值（0 表示不裁剪）。", min=0)
    optim: str = option("adamw_torch_fused", "Optimizer.", help_zh="优化器。", choices=OPTIMIZERS)
    adam_beta1: float = option(0.9, "Adam beta1.", help_zh="Adam 的 beta1。",
                               min=0, max=1, max_exclusive=True)
    adam_beta2: float = option(0.999, "Adam beta2.", help_zh="Adam 的 beta2。",
                               min=0, max=1, max_exclusive=True)
    adam_epsilon: float = option(1e-8, "Adam epsilon.", help_zh="Adam 的 epsilon。", min=0)
    logging_steps: float = option(
        TRAINING_DEFAULTS["logging_steps"], "Log loss and learning rate every N steps (below 1: "
        "a fraction of all steps).", help_zh="每隔多少步记录一次损失和学习率（小于 1 表示占总步数的比例）。",
        min=0, min_exclusive=True)
    save_strategy: str = option(
        "steps", "When to write a checkpoint: no, steps (every save_steps), epoch, best.",
        help_zh="何时保存检查点：no、steps（每 save_steps 步）、epoch、best。",
        choices=("no", "steps", "epoch", "best"))
    save_steps: float = option(
        TRAINING_DEFAULTS["save_steps"], "Write a checkpoint every N steps (below 1: a fraction "
        "of all steps).", help_zh="每隔多少步保存一次检查点（小于 1 表示占总步数的比例）。",
        min=0, min_exclusive=True, when={"save_strategy": ("steps",)})
    save_total_limit: int | None = option(
        None, "Keep at most this many checkpoints (older ones are deleted). Unset: keep all.",
        help_zh="最多保留多少个检查点（更早的会被删除）。不设置：全部保留。", min=1)
    save_only_model: bool = option(
        False, "Checkpoints hold only the weights, without optimizer state (smaller, but a run "
        "cannot be resumed from them).", help_zh="检查点只保存权重，不含优化器状态（更小，但无法据此续训）。")
    eval_strategy: str = option(
        "no", "When to evaluate on the eval split: no, steps (every eval_steps), epoch.",
        help_zh="何时在验证集上评估：no、steps（每 eval_steps 步）、epoch。",
        choices=("no", "steps", "epoch"), aliases=("evaluation_strategy",))
    eval_steps: float | None = option(
        None, "Evaluate every N steps. Unset: same as logging_steps.",
        help_zh="每隔多少步评估一次。不设置：与 logging_steps 相同。", min=0, min_exclusive=True,
        when={"eval_strategy": ("steps",)})
    load_best_model_at_end: bool = option(
        False, "After training, load the checkpoint with the best metric_for_best_model and save it "
        "as the run's model (needs save_strategy = eval_strategy; the manifest names it).",
        help_zh="训练结束后载入 metric_for_best_model 最好的检查点并作为本次运行的模型保存"
        "（需要 save_strategy 与 eval_strategy 相同；manifest 中记录其名称）。")
    metric_for_best_model: str | None = option(
        None, "The evaluation metric that picks the best checkpoint, e.g. eval_loss. Unset: loss "
        "when load_best_model_at_end is on.",
        help_zh="用于挑选最佳检查点的评估指标，如 eval_loss。不设置：开启 load_best_model_at_end 时为 loss。")
    greater_is_better: bool | None = option(
        None, "Whether a higher metric_for_best_model is better. Unset: false for a loss, true otherwise.",
        help_zh="metric_for_best_model 是否越大越好。不设置：损失类指标为 false，其余为 true。")
    bf16: bool = option(False, "Train in bfloat16 mixed precision (Ampere or newer GPUs).",
                        help_zh="使用 bfloat16 混合精度训练（Ampere 及更新的 GPU）。")
    fp16: bool = option(False, "Train in float16 mixed precision (older GPUs).",
                        help_zh="使用 float16 混合精度训练（较旧的 GPU）。")
    seed: int = option(42, "Random seed for initialisation, data order and dropout.",
                       help_zh="随机种子：影响初始化、数据顺序和 dropout。", min=0, max=SEED_MAX)
    dataloader_num_workers: int = option(
        0, "Worker processes that load batches (0: in the training process).",
        help_zh="加载批数据的子进程数（0：在训练进程内加载）。", min=0)
    report_to: list[str] = option(
        None, "Where to send metrics besides the run directory: none, or one or more of "
        "tensorboard, wandb, mlflow, ... (comma-separated), or all.",
        factory=lambda: list(TRAINING_DEFAULTS["report_to"]),
        help_zh="除运行目录外，指标还发送到哪里：none，或 tensorboard、wandb、mlflow 等中的一个或多个（逗号分隔），或 all。")
    deepspeed: str | dict | None = option(
        None, "DeepSpeed config: a JSON file path or a mapping (needs `pip install deepspeed`). "
        "Ready ones: examples/deepspeed/ds_z0.json, ds_z2.json, ds_z2_offload.json, ds_z3.json, "
        "ds_z3_offload.json; their \"auto\" values are filled from the recipe by transformers.",
        help_zh="DeepSpeed 配置：JSON 文件路径或映射（需要 `pip install deepspeed`）。现成配置："
        "examples/deepspeed/ds_z0.json、ds_z2.json、ds_z2_offload.json、ds_z3.json、ds_z3_offload.json；"
        "其中的 \"auto\" 值由 transformers 按配方填入。", group="training")
    fsdp: str | bool | None = option(
        None, "PyTorch FSDP2 (through accelerate) for several processes: 'full_shard auto_wrap' "
        "shards weights, gradients and optimizer state and wraps each decoder layer; "
        "'shard_grad_op' keeps the weights whole between forward and backward; add 'offload' to "
        "keep parameters in CPU RAM. true = full_shard.",
        help_zh="PyTorch FSDP2（经由 accelerate），用于多进程训练：'full_shard auto_wrap' 切分权重、梯度和"
        "优化器状态并逐个包装解码层；'shard_grad_op' 在前向与反向之间保留完整权重；加上 'offload' "
        "把参数放在 CPU 内存。true 即 full_shard。", group="training")
    fsdp_config: str | dict | None = option(
        None, "FSDP settings: a JSON file or a mapping of transformers' fsdp_config keys "
        "(transformer_layer_cls_to_wrap, cpu_offload, reshard_after_forward, state_dict_type, "
        "activation_checkpointing, ...). Setting it turns FSDP on. TuneLab runs FSDP2 with "
        "CPU-RAM-efficient loading and saves a full state dict unless it says otherwise.",
        help_zh="FSDP 设置：JSON 文件或映射，键为 transformers 的 fsdp_config 键（transformer_layer_cls_to_wrap、"
        "cpu_offload、reshard_after_forward、state_dict_type、activation_checkpointing 等）。设置它即开启 "
        "FSDP。TuneLab 运行 FSDP2，默认节省 CPU 内存地加载，并保存完整的 state dict。", group="training")
    use_liger_kernel: bool = option(
        False, "Liger kernels (CUDA, `pip install liger-kernel`): fused RMSNorm, RoPE, SwiGLU and "
        "a fused linear cross-entropy that never builds the logits.",
        help_zh="Liger 内核（CUDA，`pip install liger-kernel`）：融合的 RMSNorm、RoPE、SwiGLU，以及从不"
        "生成 logits 的融合线性交叉熵。", aliases=("enable_liger_kernel",), group="training")
    torch_compile: bool = option(
        False, "Compile the model with torch.compile (faster steps after a slow first one; needs "
        "a C compiler on CPU).",
        help_zh="用 torch.compile 编译模型（首步较慢，之后更快；在 CPU 上需要 C 编译器）。", group="training")
    ddp_timeout: int = option(1800, "Seconds processes wait for each other in distributed runs.",
                              help_zh="分布式训练中进程间等待的秒数。", min=1)
    neftune_noise_alpha: float | None = option(
        None, "NEFTune: add noise of this scale to embeddings while training (e.g. 5).",
        help_zh="NEFTune：训练时向词嵌入加入该强度的噪声（如 5）。", min=0, min_exclusive=True)
