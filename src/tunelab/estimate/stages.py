"""What the post-training stages add to a step's memory: a frozen reference model (dpo, kto,
grpo and rloo with a KL term), a reward model (grpo and rloo with reward_model), the generation
cache (grpo, rloo), and how many sequences one row feeds (chosen + rejected for rm and dpo). An
online row is one completion (TRL's per_device_train_batch_size counts completions,
num_generations of them per prompt), of cutoff_len prompt + max_completion_length sampled
tokens; its generation round samples the completions of all gradient_accumulation_steps
micro-batches at once.

The rules follow what ``tunelab train`` runs (``tunelab.train.stages``): with LoRA and no
``ref_model`` the reference is the policy with its adapter disabled, so it costs nothing; with
full or freeze it is a second, frozen copy of the base; an explicit ``ref_model`` is loaded as
it is (in ``ref_model_quantization_bit`` bits when given). orpo and simpo have no reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.estimate.shape import ModelShape, count_text as _count
from tunelab.train.stages import ONLINE_STAGES

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.estimate.plan import Plan

PAIRED_STAGES = ("rm", "dpo")  # chosen and rejected go through the model in one batch
NO_REFERENCE_LOSSES = ("orpo", "simpo")
QUANT_BLOCK = 64  # bitsandbytes 4-bit block size (one absmax per block)
DOUBLE_QUANT_BLOCK = 256  # second-level block over the 8-bit absmax values


def stage_settings(cfg: "Config") -> dict[str, Any]:
    """The Plan fields of the recipe's stage (see the module docstring)."""
    stage, pref, rl = cfg.method.stage, cfg.preference, cfg.rl
    settings: dict[str, Any] = {"stage": stage, "reference": _reference(cfg)}
    if stage in PAIRED_STAGES:
        settings["sequences"] = 2
    if stage in ONLINE_STAGES:
        settings.update(generations=int(rl.num_generations), completion_len=int(rl.max_completion_length),
                        **_reward_settings(cfg))
    if settings["reference"] == "model":
        settings.update(reference_bit=pref.ref_model_quantization_bit,
                        reference_shape=_shape_or_none(pref.ref_model, cfg))
    return settings


def _reference(cfg: "Config") -> str:
    """none, policy (the starting policy: adapter disabled, or a copy), or model (ref_model)."""
    stage = cfg.method.stage
    if stage in ONLINE_STAGES:
        return "policy" if cfg.rl.grpo_beta > 0 else "none"
    if stage not in ("dpo", "kto"):
        return "none"
    if stage == "dpo" and cfg.preference.pref_loss in NO_REFERENCE_LOSSES:
        return "none"
    return "model" if cfg.preference.ref_model else "policy"


def _reward_settings(cfg: "Config") -> dict[str, Any]:
    rl = cfg.rl
    kind = rl.reward_model_type if rl.reward_model else "none"
    settings: dict[str, Any] = {"reward_model": kind, "reward_bit": rl.reward_model_quantization_bit}
    if kind == "full":
        settings["reward_shape"] = _shape_or_none(rl.reward_model, cfg)
    if kind == "lora":
        adapter = Path(rl.reward_model).expanduser() / "adapter_model.safetensors"
        settings["reward_adapter_bytes"] = adapter.stat().st_size if adapter.is_file() else None
    return settings


def _shape_or_none(name: str | None, cfg: "Config") -> ModelShape | None:
    """The counted shape of another model; None when its config cannot be read (the policy's
    shape stands in, and the detail line says so)."""
    from tunelab.estimate.shape import load_model_config, shape_of

    try:
        config = load_model_config(name, trust_remote_code=cfg.model.trust_remote_code,
                                   cache_dir=cfg.model.cache_dir, revision=cfg.model.model_revision)
        return shape_of(config, trust_remote_code=cfg.model.trust_remote_code)
    except Exception:  # an unreadable reference must not stop the estimate of the policy
        return None


def quantized_linear_bytes(shape: ModelShape, bits: int, double_quant: bool) -> int:
    """The linear weights (head excluded) in bitsandbytes' 4- or 8-bit form, constants included."""
    linear = shape.linear_weight_params
    if bits == 4:
        if double_quant:
            return linear // 2 + linear // QUANT_BLOCK + 4 * linear // (QUANT_BLOCK * DOUBLE_QUANT_BLOCK)
        return linear // 2 + 4 * linear // QUANT_BLOCK
    return linear + 4 * sum(li.out_features for li in shape.linears)  # one fp32 scale per row


def frozen_model_bytes(plan: "Plan", shape: ModelShape, bits: int | None) -> int:
    """A model loaded for inference only: the weight dtype, or ``bits`` for the linear weights
    with the rest in the weight dtype (nothing is upcast, as nothing trains)."""
    if not bits:
        return shape.total_params * plan.weight_bytes
    rest = shape.total_params - shape.linear_weight_params
    return quantized_linear_bytes(shape, bits, plan.double_quantization) + rest * plan.weight_bytes


def reference_bytes(plan: "Plan", shape: ModelShape) -> tuple[int, str]:
    """The frozen reference model, and a one-line explanation."""
    if plan.reference == "none":
        return 0, f"none ({_no_reference_reason(plan)})"
    if plan.reference == "model":
        ref_shape = plan.reference_shape or shape
        size = "" if plan.reference_shape else ", priced at the policy's size (its config is unreadable)"
        bits = f"{plan.reference_bit}-bit" if plan.reference_bit else plan.weight_dtype
        return (frozen_model_bytes(plan, ref_shape, plan.reference_bit),
                f"ref_model, frozen: {_count(ref_shape.total_params)} params in {bits}{size}")
    if plan.finetuning_type == "lora":
        return 0, "none: the base with the LoRA adapter disabled is the reference"
    return (frozen_model_bytes(plan, shape, None),
            f"frozen copy of the base ({plan.finetuning_type} trains it): "
            f"{_count(shape.total_params)} params x {plan.weight_dtype}")


def _no_reference_reason(plan: "Plan") -> str:
    if plan.stage in ONLINE_STAGES:
        return "grpo_beta 0: no KL term"
    if plan.stage == "dpo":
        return "orpo and simpo need no reference"
    return f"stage {plan.stage} has none"


def reward_bytes(plan: "Plan", shape: ModelShape, lora_params: int) -> tuple[int, str]:
    """The online stages' reward model, a frozen scorer of its own (``tunelab train`` shares no
    weights with the policy): a separate model (full), or a second copy of the policy's base with
    the rm adapter (lora; ``lora_params`` fp32 when the adapter file is not there to measure),
    both in ``reward_bit`` bits when given; nothing on this GPU (api)."""
    kind = plan.reward_model
    bits = f"{plan.reward_bit}-bit" if plan.reward_bit else plan.weight_dtype
    if kind == "full":
        reward_shape = plan.reward_shape or shape
        size = "" if plan.reward_shape else ", priced at the policy's size (its config is unreadable)"
        return (frozen_model_bytes(plan, reward_shape, plan.reward_bit),
                f"full reward model, frozen: {_count(reward_shape.total_params)} params in {bits}{size}")
    if kind == "lora":
        base = frozen_model_bytes(plan, shape, plan.reward_bit)
        measured = plan.reward_adapter_bytes is not None
        adapter = plan.reward_adapter_bytes if measured else lora_params * 4
        how = "its file size" if measured else "sized as the policy's LoRA, fp32"
        return base + adapter, (f"frozen copy of the policy's base ({_count(shape.total_params)} "
                                f"params in {bits}) + the rm adapter ({how})")
    if kind == "api":
        return 0, "none on this GPU: an HTTP endpoint scores the answers"
    return 0, "none"


def generation_bytes(plan: "Plan", shape: ModelShape) -> tuple[int, str]:
    """The online stages' KV cache while one round samples the completions of a step's micro-batches
    (freed before the training forward, so it overlaps the activations; see ``parts``)."""
    if plan.stage not in ONLINE_STAGES:
        return 0, ""
    sampled = plan.batch_size * plan.grad_accum
    total = sampled * plan.seq_len * 2 * shape.num_layers * shape.kv_dim * plan.compute_bytes
    return total, (f"KV cache of {sampled} completions ({plan.batch_size} per micro-batch x "
                   f"{plan.grad_accum} accumulated, num_generations={plan.generations} per prompt) "
                   f"x {plan.seq_len} tokens, freed before the training forward")


def stage_notes(plan: "Plan") -> list[str]:
    """What the estimate of a post-training stage assumes."""
    notes = []
    if plan.stage in ("dpo", "kto", *ONLINE_STAGES) and plan.reference != "none":
        notes.append("reference forwards run without gradients: they keep no activations")
    if plan.stage == "kto":
        notes.append("kto also scores each row against another row's answer (its KL term), "
                     "without gradients")
    if plan.stage in ONLINE_STAGES:
        notes.append(f"{plan.stage}: a row is one completion (num_generations={plan.generations} per prompt), "
                     f"up to {plan.completion_len} sampled tokens after the prompt")
    return notes
