"""What the online stages (grpo, rloo) share: one builder, given TRL's trainer and config
classes, that wires the rewards (``reward_funcs`` and the ``reward_model``), the sampling keys,
the end-of-turn stops and the reference model into it. GRPOTrainer and RLOOTrainer take the same
constructor; their configs differ only in a few fields (grpo's loss_type, for one).

Each step samples ``num_generations`` completions per prompt (sampling settings: the recipe's
temperature, top_p, top_k and repetition_penalty) and scores each with every reward. The model
is the one every stage gets (LoRA, DoRA, QLoRA, freeze or full already applied); prompts are the
rows' messages, rendered by the run's chat template exactly as chat renders them.
"""

from __future__ import annotations

from typing import Any

from tunelab.train.stages.context import StageContext


def build_online_trainer(ctx: StageContext, trainer_class: type, config_class: type,
                         values: dict[str, Any]) -> Any:
    """``trainer_class`` (GRPOTrainer, RLOOTrainer) built from the recipe and ``values`` (the
    stage's config values, see ``online_values``)."""
    from tunelab.train.workflow import log

    stage = ctx.cfg.method.stage
    rewards, described = load_reward_functions(ctx)
    args = ctx.trl_config(config_class, **values)
    _stop_on_end_of_turn(ctx)
    log(f"{stage}: rewards {'; '.join(described)}; {_reference_note(ctx)}")
    trainer = trainer_class(
        model=ctx.model, reward_funcs=rewards, args=args, train_dataset=ctx.prepared.train,
        eval_dataset=ctx.prepared.eval, processing_class=ctx.tokenizer, callbacks=ctx.callbacks)
    if _adapter_starts_as_identity(ctx) and "ref" in getattr(ctx.model, "peft_config", {}):
        # TRL copies a given adapter as the reference ("ref"); a new LoRA/DoRA adapter starts as
        # the identity, so the base with adapters disabled is the same reference, for free.
        ctx.model.delete_adapter("ref")
    return ctx.finish(trainer)


def load_reward_functions(ctx: StageContext) -> tuple[list, list[str]]:
    """The reward callables TRL sums (reward_funcs, then the reward model) and, for the log,
    what each is."""
    from tunelab.rewards import load_rewards
    from tunelab.rewards.reward_model import load_reward_model

    rl = ctx.cfg.rl
    names = list(rl.reward_funcs or [])
    rewards = load_rewards(names, max_completion_length=rl.max_completion_length) if names else []
    if rl.reward_model:
        # On the device the policy trains on (each process's own, under DDP).
        reward_model = load_reward_model(ctx.cfg, device=str(ctx.args.device))
        rewards.append(reward_model)
        names.append(f"reward_model ({reward_model.describe})")
    return rewards, names


def online_values(cfg: Any) -> dict[str, Any]:
    """The TRL config values both online stages take, from the recipe's keys."""
    rl, infer = cfg.rl, cfg.infer
    values = dict(
        num_generations=rl.num_generations, max_completion_length=rl.max_completion_length,
        beta=rl.grpo_beta, epsilon=rl.grpo_epsilon,
        temperature=infer.temperature, top_p=infer.top_p, top_k=infer.top_k,
        repetition_penalty=infer.repetition_penalty,
        # The template variables training and chat render with (the system prompt is a message).
        chat_template_kwargs={"enable_thinking": cfg.data.enable_thinking},
        # Reward functions read the rows' other columns (answer, ...).
        remove_unused_columns=False,
        # The trainer counts prompt and completion tokens itself; a batch has no input_ids.
        include_num_input_tokens_seen="no",
        use_vllm=rl.use_vllm,
    )
    if rl.use_vllm:  # one process: vLLM shares the training GPU (no `trl vllm-serve` to start)
        values["vllm_mode"] = "colocate"
    return values


def _stop_on_end_of_turn(ctx: StageContext) -> None:
    """Completions end at the template's end-of-turn tokens as chat's answers do: the trainer
    stops at the model's generation_config eos ids (and the tokenizer's eos)."""
    from tunelab.data.templates import stop_token_ids

    if ctx.prepared.template is None:
        return
    model = ctx.model.get_base_model() if hasattr(ctx.model, "get_base_model") else ctx.model
    eos = model.generation_config.eos_token_id
    ids = [eos] if isinstance(eos, int) else list(eos or [])
    ids += [i for i in stop_token_ids(ctx.tokenizer, ctx.prepared.template) if i not in ids]
    model.generation_config.eos_token_id = ids


def _adapter_starts_as_identity(ctx: StageContext) -> bool:
    """A freshly initialised adapter (not loaded, not PiSSA) leaves the base model's output as it is."""
    return hasattr(ctx.model, "get_base_model") and not ctx.cfg.model.adapter_name_or_path \
        and not ctx.cfg.method.pissa_init


def _reference_note(ctx: StageContext) -> str:
    """What the KL term compares the policy with, for the log."""
    beta = ctx.cfg.rl.grpo_beta
    if beta == 0:
        return "grpo_beta=0: no reference model, kl is neither computed nor logged"
    if _adapter_starts_as_identity(ctx):
        return (f"grpo_beta={beta:g}: the reference is the base model with the adapter disabled "
                "(no second copy of the weights)")
    if hasattr(ctx.model, "get_base_model"):
        return (f"grpo_beta={beta:g}: the reference is a frozen copy of the starting adapter "
                "(no second copy of the base weights)")
    return f"grpo_beta={beta:g}: the reference is a second, frozen copy of the model"
