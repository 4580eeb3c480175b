"""The preference stages' keys (rm, dpo, kto), named as LLaMA-Factory names them."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option

DPO = {"stage": ("dpo",)}
PAIRS = {"stage": ("dpo", "kto")}
KTO = {"stage": ("kto",)}
# The keys of a reference model: dpo with a loss that has one (orpo and simpo have none), and kto.
WITH_REFERENCE = {"stage": ("dpo", "kto"), "pref_loss": ("sigmoid", "ipo", "hinge")}
# The losses of stage dpo: DPO and its variants (TRL's DPOTrainer / CPOTrainer / ORPOTrainer).
PREF_LOSSES = ("sigmoid", "ipo", "hinge", "orpo", "simpo")
SIMPO = {"stage": ("dpo",), "pref_loss": ("simpo",)}
# ORPO's loss always holds its SFT term; TRL's label smoothing exists for sigmoid and simpo only.
WITH_FTX = {"stage": ("dpo",), "pref_loss": ("sigmoid", "ipo", "hinge", "simpo")}
SMOOTHED = {"stage": ("dpo",), "pref_loss": ("sigmoid", "simpo")}


@dataclass
class PreferenceArgs:
    pref_beta: float = option(
        0.1, "dpo/kto: beta, how far the policy may move from the reference (higher: closer).",
        help_zh="dpo/kto：beta，策略偏离参考模型的程度（越大越接近参考模型）。", min=0,
        min_exclusive=True, group="preference", when=PAIRS)
    pref_loss: str = option(
        "sigmoid", "dpo: the preference loss: sigmoid (DPO), ipo, hinge, orpo (no reference "
        "model), simpo (no reference model).",
        help_zh="dpo：偏好损失：sigmoid（DPO）、ipo、hinge、orpo（无参考模型）、simpo（无参考模型）。",
        choices=PREF_LOSSES, group="preference", when=DPO)
    pref_ftx: float = option(
        0.0, "dpo: weight of an added SFT loss on the chosen answers (0: none; orpo always has "
        "one).", help_zh="dpo：在 chosen 回答上附加的 SFT 损失权重（0：不加；orpo 自带）。", min=0,
        group="preference", when=WITH_FTX)
    simpo_gamma: float = option(
        0.5, "dpo with pref_loss simpo: the target reward margin gamma.",
        help_zh="dpo 且 pref_loss 为 simpo：目标奖励间隔 gamma。", min=0, group="preference",
        when=SIMPO)
    dpo_label_smoothing: float = option(
        0.0, "dpo with pref_loss sigmoid or simpo: label smoothing in [0, 0.5), the assumed "
        "share of flipped labels (sigmoid: robust DPO).",
        help_zh="dpo 且 pref_loss 为 sigmoid 或 simpo：标签平滑，取值 [0, 0.5)，假定被标反的比例（sigmoid：稳健 DPO）。",
        min=0, max=0.5, max_exclusive=True, group="preference", when=SMOOTHED)
    kto_chosen_weight: float = option(
        1.0, "kto: weight of the desirable answers' loss.", help_zh="kto：期望回答的损失权重。",
        min=0, min_exclusive=True, group="preference", when=KTO)
    kto_rejected_weight: float = option(
        1.0, "kto: weight of the undesirable answers' loss.", help_zh="kto：不期望回答的损失权重。",
        min=0, min_exclusive=True, group="preference", when=KTO)
    ref_model: str | None = option(
        None, "dpo/kto: the reference model (a folder or hub name). Unset: the starting "
        "model, a frozen copy of it with full/freeze; with LoRA the base with the adapter "
        "disabled (no second copy; a continued or PiSSA adapter: a frozen copy of the starting "
        "adapter only). dpo's orpo and simpo use none (it is an error to set it with them).",
        help_zh="dpo/kto：参考模型（目录或 hub 名称）。不设置：训练起点的模型，full/freeze 时为其冻结副本；"
        "LoRA 时为关闭适配器的基座（不复制权重；继续训练的或 PiSSA 适配器：仅冻结起始适配器的副本）。"
        "dpo 的 orpo 和 simpo 不用参考模型（与它们同时设置会报错）。",
        group="preference", when=WITH_REFERENCE)
    ref_model_adapters: list[str] | None = option(
        None, "Adapters applied to ref_model (merged into it; a 4/8-bit ref_model takes one, "
        "unmerged).", help_zh="应用到参考模型上的适配器（合并进模型；4/8 比特参考模型只能加载一个，不合并）。",
        group="preference", when=WITH_REFERENCE)
    ref_model_quantization_bit: int | None = option(
        None, "Load ref_model in 4 or 8 bits (bitsandbytes).",
        help_zh="以 4 或 8 比特加载参考模型（bitsandbytes）。", choices=(4, 8), group="preference",
        when=WITH_REFERENCE)
