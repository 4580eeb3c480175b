"""The online stages' keys (grpo, rloo): what scores the sampled answers (reward functions, a
reward model) and how answers are sampled and learned from. The reward model keys keep
LLaMA-Factory's names; the rest follow TRL's. LLaMA-Factory's ppo_* keys are accepted without
effect (config/compat.py): TuneLab has no ppo stage."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option
from tunelab.train.stages import ONLINE_STAGES

ONLINE = {"stage": ONLINE_STAGES}
GRPO = {"stage": ("grpo",)}
REWARD_MODEL_TYPES = ("lora", "full", "api")


@dataclass
class RLArgs:
    reward_funcs: list[str] | None = option(
        None, "grpo/rloo: reward functions, a list or comma-separated: accuracy (the final answer "
        "against the row's answer column), format (<think>...</think> then an answer), length "
        "(penalises completions that reach max_completion_length), or module.path:function for "
        "your own (def f(completions, **kwargs) -> list[float]). May be empty with reward_model.",
        help_zh="grpo/rloo：奖励函数，列表或逗号分隔：accuracy（最终答案与该行 answer 列比对）、format"
        "（<think>...</think> 后给出答案）、length（惩罚接近 max_completion_length 的回答），或用 "
        "module.path:function 指定自己的函数（def f(completions, **kwargs) -> list[float]）。"
        "设置了 reward_model 时可以为空。",
        group="rewards", when=ONLINE)
    reward_model: str | None = option(
        None, "grpo/rloo: a reward model that scores every completion, one more reward beside "
        "reward_funcs (logged as rewards/reward_model/mean): a TuneLab rm run (lora: its adapter "
        "on the policy's base; full: a full or freeze rm run, or any sequence-classification "
        "model folder) or, with reward_model_type api, the URL of an endpoint shaped like "
        "POST /v1/score.",
        help_zh="grpo/rloo：为每个采样回答打分的奖励模型，与 reward_funcs 一起作为一项奖励（记录为 "
        "rewards/reward_model/mean）：TuneLab 的 rm 运行目录（lora：策略基座上的适配器；full：full 或 "
        "freeze 训练的 rm 运行，或任意序列分类模型目录），或（reward_model_type 为 api 时）形如 "
        "POST /v1/score 的接口 URL。",
        group="rewards", when=ONLINE)
    reward_model_type: str = option(
        "lora", "grpo/rloo: lora (an rm adapter on the policy's base model), full (a separate "
        "sequence-classification model) or api (an HTTP endpoint that scores texts).",
        help_zh="grpo/rloo：lora（策略基座模型上的 rm 适配器）、full（独立的序列分类模型）或 api"
        "（给文本打分的 HTTP 接口）。",
        choices=REWARD_MODEL_TYPES, group="rewards", when=ONLINE)
    reward_model_adapters: list[str] | None = option(
        None, "grpo/rloo with reward_model_type full: one rm adapter (trained with stage rm on "
        "reward_model) to load onto reward_model.",
        help_zh="grpo/rloo，reward_model_type 为 full 时：加载到 reward_model 上的一个 rm 适配器"
        "（在 reward_model 上用 stage rm 训练）。",
        group="rewards", when=ONLINE)
    reward_model_quantization_bit: int | None = option(
        None, "grpo/rloo: load the reward model in 4 or 8 bits (bitsandbytes; not for api).",
        help_zh="grpo/rloo：以 4 或 8 比特加载奖励模型（bitsandbytes；api 不适用）。",
        choices=(4, 8), group="rewards", when=ONLINE)
    num_generations: int = option(
        8, "grpo/rloo: completions sampled per prompt (the group); must divide "
        "per_device_train_batch_size x gradient_accumulation_steps x devices, the completions of "
        "one step.",
        help_zh="grpo/rloo：每个提示采样的回答数（组大小）；须整除 per_device_train_batch_size × "
        "gradient_accumulation_steps × 设备数（每步的回答数）。", min=2, group="online", when=ONLINE)
    max_completion_length: int = option(
        256, "grpo/rloo: most tokens per sampled completion (max_new_tokens is chat's).",
        help_zh="grpo/rloo：每个采样回答的最大 token 数（max_new_tokens 用于对话）。",
        min=1, group="online", when=ONLINE)
    grpo_beta: float = option(
        0.0, "grpo/rloo: KL coefficient against the reference (0: no reference is kept and kl is "
        "not logged; with LoRA the reference is the base with the adapter disabled). grpo adds "
        "it to the loss, rloo subtracts beta x KL from each completion's reward.",
        help_zh="grpo/rloo：相对参考模型的 KL 系数（0：不保留参考模型，也不记录 kl；LoRA 时参考模型为"
        "禁用适配器的基座）。grpo 把它加进损失，rloo 从每个回答的奖励中减去 beta × KL。",
        min=0, group="online", when=ONLINE)
    grpo_epsilon: float = option(0.2, "grpo/rloo: clipping range epsilon.",
                                 help_zh="grpo/rloo：裁剪范围 epsilon。",
                                 min=0, min_exclusive=True, group="online", when=ONLINE)
    loss_type: str = option(
        "dapo", "grpo: loss normalisation: grpo, bnpo, dr_grpo or dapo (TRL's names).",
        help_zh="grpo：损失归一化方式：grpo、bnpo、dr_grpo 或 dapo（TRL 的名称）。",
        choices=("grpo", "bnpo", "dr_grpo", "dapo"), group="online", when=GRPO)
    use_vllm: bool = option(False, "grpo/rloo: generate the completions with vLLM, colocated on "
                            "the training GPU (CUDA and the vllm extra).",
                            help_zh="grpo/rloo：用 vLLM 生成回答，与训练共用 GPU（需要 CUDA 和 vllm 附加依赖）。",
                            group="online", when=ONLINE)
