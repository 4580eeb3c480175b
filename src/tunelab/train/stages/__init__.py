"""The registry of training stages: which exist, what each reads, and the module that builds
its trainer. The CLI's and the board's stage lists (config's ``stage`` choices) read it, so only
stages that work are offered.

A stage module under ``tunelab.train.stages`` defines ``build_trainer(ctx: StageContext)``
returning a ``transformers.Trainer`` (TRL's trainers are ones); it may also define
``load_model(cfg)`` when the stage trains something other than the causal LM that
``tunelab.model.load_model`` gives (e.g. a reward model with a score head). This file stays
free of torch so config can import it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Stage:
    """One training stage: its recipe name, one-line help and the module that implements it."""

    name: str
    help: str
    help_zh: str
    module: str

    def load(self) -> ModuleType:
        """The stage's module (imports torch and the trainer library it uses)."""
        return importlib.import_module(self.module)


_STAGES = (
    Stage("pt", "continued pre-training on raw text", "在纯文本上继续预训练", "tunelab.train.stages.causal_lm"),
    Stage("sft", "supervised fine-tuning on conversations", "在对话数据上监督微调",
          "tunelab.train.stages.causal_lm"),
    Stage("rm", "a pairwise reward model (score head) on chosen/rejected pairs",
          "在 chosen/rejected 偏好对上训练成对奖励模型（打分头）", "tunelab.train.stages.rm"),
    Stage("dpo", "preference training on chosen/rejected pairs (DPO, IPO, hinge, ORPO, SimPO)",
          "在 chosen/rejected 偏好对上训练（DPO、IPO、hinge、ORPO、SimPO）", "tunelab.train.stages.dpo"),
    Stage("kto", "KTO on answers tagged desirable or undesirable (kto_tag)",
          "在标注为期望/不期望（kto_tag）的回答上做 KTO 偏好训练", "tunelab.train.stages.kto"),
    Stage("grpo", "group relative policy optimisation: sampled answers scored by reward functions "
          "and/or a reward model", "组相对策略优化：用奖励函数和/或奖励模型为采样的回答打分",
          "tunelab.train.stages.grpo"),
    Stage("rloo", "REINFORCE leave-one-out: sampled answers scored by reward functions and/or a "
          "reward model, each measured against the mean of the others", "REINFORCE 留一法：用奖励函数"
          "和/或奖励模型为采样的回答打分，每个回答与同组其余回答的均值比较", "tunelab.train.stages.rloo"),
)

STAGES: dict[str, Stage] = {stage.name: stage for stage in _STAGES}
IMPLEMENTED_STAGES: tuple[str, ...] = tuple(STAGES)
# Stages that sample their own answers and learn from rewards (prompt rows, reward keys).
ONLINE_STAGES: tuple[str, ...] = ("grpo", "rloo")
# Stages a recipe may name (LLaMA-Factory has them) that this version does not train, and why.
RETIRED_STAGES: dict[str, tuple[str, str]] = {
    "ppo": ("stage ppo is not available: TRL >= 1.13 no longer ships a PPOTrainer (it was "
            "removed), and TuneLab needs TRL >= 1.16",
            "use stage: grpo or stage: rloo with reward_model: <your rm run> (the reward model "
            "scores each sampled answer, as in PPO, without a value model)"),
}


def stage_help(zh: bool = False) -> str:
    """``pt (continued ...), sft (...)``: the list help texts show (``zh``: in Chinese)."""
    if zh:
        return "；".join(f"{s.name}（{s.help_zh}）" for s in _STAGES)
    return ", ".join(f"{s.name} ({s.help})" for s in _STAGES)
