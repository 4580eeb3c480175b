"""grpo: Group Relative Policy Optimization with TRL's GRPOTrainer.

Each step samples ``num_generations`` completions per prompt, scores them with the reward
functions and the reward model, and pushes the policy towards the completions that beat their
group's mean (``loss_type`` picks how the loss is normalised). The wiring is the online stages'
shared builder (``online``).
"""

from __future__ import annotations

from typing import Any

from tunelab.train.stages.context import StageContext
from tunelab.train.stages.online import build_online_trainer, online_values


def build_trainer(ctx: StageContext) -> Any:
    from trl import GRPOConfig, GRPOTrainer

    return build_online_trainer(ctx, GRPOTrainer, GRPOConfig, grpo_values(ctx.cfg))


def grpo_values(cfg: Any) -> dict[str, Any]:
    """GRPOConfig values from the recipe's online keys, its sampling keys and loss_type."""
    return {**online_values(cfg), "loss_type": cfg.rl.loss_type}
