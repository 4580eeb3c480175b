"""The online stages' keys: ppo (LLaMA-Factory's names) and grpo (TuneLab's, after TRL's)."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option

PPO = {"stage": ("ppo",)}
GRPO = {"stage": ("grpo",)}


@dataclass
class RLArgs:
    reward_model: str | None = option(
        None, "ppo: the reward model: a TuneLab rm run, a model folder, or (reward_model_type api) "
        "the URL of an endpoint that scores texts.",
        help_zh="ppo：奖励模型：TuneLab 的 rm 运行目录、模型目录，或（reward_model_type 为 api 时）给文本打分的接口 URL。",
        group="ppo", when=PPO)
    reward_model_adapters: list[str] | None = option(
        None, "ppo: adapters to load onto reward_model.", help_zh="ppo：加载到奖励模型上的适配器。",
        group="ppo", when=PPO)
    reward_model_type: str = option(
        "lora", "ppo: lora (an rm adapter on the policy's base), full (a separate model) or api.",
        help_zh="ppo：lora（策略基座上的 rm 适配器）、full（独立模型）或 api（HTTP 接口）。",
        choices=("lora", "full", "api"), group="ppo", when=PPO)
    reward_model_quantization_bit: int | None = option(
        None, "ppo: load the reward model in 4 or 8 bits.", help_zh="ppo：以 4 或 8 比特加载奖励模型。",
        choices=(4, 8), group="ppo", when=PPO)
    ppo_epochs: int = option(4, "ppo: optimisation epochs per batch of rollouts.",
                             help_zh="ppo：每批采样的优化轮数。", min=1, group="ppo", when=PPO)
    ppo_buffer_size: int = option(
        1, "ppo: mini-batches in one rollout buffer.", help_zh="ppo：一个经验缓冲区中的小批次数。",
        min=1, group="ppo", when=PPO)
    ppo_score_norm: bool = option(False, "ppo: normalise the reward scores.",
                                  help_zh="ppo：归一化奖励分数。", group="ppo", when=PPO)
    ppo_whiten_rewards: bool = option(False, "ppo: whiten the rewards before computing advantages.",
                                      help_zh="ppo：计算优势前对奖励做白化。", group="ppo", when=PPO)
    ppo_target: float = option(6.0, "ppo: target KL of the adaptive KL controller.",
                               help_zh="ppo：自适应 KL 控制器的目标 KL。", min=0, group="ppo", when=PPO)
    reward_funcs: list[str] | None = option(
        None, "grpo: reward functions, a list or comma-separated: accuracy (the final answer "
        "against the row's answer column), format (<think>...</think> then an answer), length "
        "(penalises completions that reach max_completion_length), or module.path:function for "
        "your own (def f(completions, **kwargs) -> list[float]).",
        help_zh="grpo：奖励函数，列表或逗号分隔：accuracy（最终答案与该行 answer 列比对）、format"
        "（<think>...</think> 后给出答案）、length（惩罚接近 max_completion_length 的回答），或用 "
        "module.path:function 指定自己的函数（def f(completions, **kwargs) -> list[float]）。",
        group="grpo", when=GRPO)
    num_generations: int = option(
        8, "grpo: completions sampled per prompt (the group); must divide per_device_train_batch_size "
        "x gradient_accumulation_steps x devices, the completions of one step.",
        help_zh="grpo：每个提示采样的回答数（组大小）；须整除 per_device_train_batch_size × "
        "gradient_accumulation_steps × 设备数（每步的回答数）。", min=2, group="grpo", when=GRPO)
    max_completion_length: int = option(
        256, "grpo: most tokens per sampled completion (max_new_tokens is chat's).",
        help_zh="grpo：每个采样回答的最大 token 数（max_new_tokens 用于对话）。",
        min=1, group="grpo", when=GRPO)
    grpo_beta: float = option(
        0.0, "grpo: KL coefficient against the reference (0: no reference is kept and kl is not "
        "logged; with LoRA the reference is the base with the adapter disabled).",
        help_zh="grpo：相对参考模型的 KL 系数（0：不保留参考模型，也不记录 kl；LoRA 时参考模型为禁用适配器的基座）。",
        min=0, group="grpo", when=GRPO)
    grpo_epsilon: float = option(0.2, "grpo: clipping range epsilon.", help_zh="grpo：裁剪范围 epsilon。",
                                 min=0, min_exclusive=True, group="grpo", when=GRPO)
    loss_type: str = option(
        "dapo", "grpo: loss normalisation: grpo, bnpo, dr_grpo or dapo (TRL's names).",
        help_zh="grpo：损失归一化方式：grpo、bnpo、dr_grpo 或 dapo（TRL 的名称）。",
        choices=("grpo", "bnpo", "dr_grpo", "dapo"), group="grpo", when=GRPO)
    use_vllm: bool = option(False, "grpo: generate the completions with vLLM, colocated on the "
                            "training GPU (CUDA and the vllm extra).",
                            help_zh="grpo：用 vLLM 生成回答，与训练共用 GPU（需要 CUDA 和 vllm 附加依赖）。",
                            group="grpo", when=GRPO)
