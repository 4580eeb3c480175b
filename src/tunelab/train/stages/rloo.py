"""rloo: REINFORCE Leave-One-Out with TRL's RLOOTrainer.

Each step samples ``num_generations`` completions per prompt and scores them like grpo; a
completion's advantage is its reward minus the mean reward of the other completions of its
prompt. RLOOConfig has GRPOConfig's sampling, beta and epsilon fields but no loss_type; its KL
term (``grpo_beta`` > 0) is subtracted from each completion's reward instead of added to the
loss. The wiring is the online stages' shared builder (``online``).
"""

from __future__ import annotations

from typing import Any

from tunelab.train.stages.context import StageContext
from tunelab.train.stages.online import build_online_trainer, online_values


def build_trainer(ctx: StageContext) -> Any:
    from trl import RLOOConfig, RLOOTrainer

    return build_online_trainer(ctx, RLOOTrainer, RLOOConfig, rloo_values(ctx.cfg))


def rloo_values(cfg: Any) -> dict[str, Any]:
    """RLOOConfig values from the recipe's online keys and its sampling keys."""
    return online_values(cfg)
