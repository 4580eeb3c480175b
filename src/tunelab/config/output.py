"""Where a run is written and how it is reported."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option


@dataclass
class OutputArgs:
    output_dir: str | None = option(
        None, "Run directory. Unset: saves/<model>/<finetuning_type>/<run_name>.",
        help_zh="运行目录。不设置：saves/<模型>/<微调方式>/<运行名>。")
    run_name: str | None = option(None, "Run name. Unset: <stage>-<date>-<time>.",
                                  help_zh="运行名称。不设置：<阶段>-<日期>-<时间>。")
    overwrite_output_dir: bool = option(False, "Allow writing into a non-empty run directory.",
                                        help_zh="允许写入非空的运行目录。")
    plot_loss: bool = option(True, "Save a loss-curve PNG in the run directory.",
                             help_zh="在运行目录中保存损失曲线 PNG。")
    resume_from_checkpoint: str | None = option(
        None, "Continue the SAME run from a checkpoint folder (or 'last' for the newest in "
        "output_dir): restores optimizer, scheduler, step, RNG and data position. To start a NEW "
        "run from trained weights, use adapter_name_or_path.",
        help_zh="从检查点文件夹继续同一次运行（'last' 表示 output_dir 中最新的检查点）：恢复优化器、"
        "学习率调度、步数、随机状态和数据位置。要从已训练的权重开始新的运行，请用 adapter_name_or_path。")
