"""Memory levers decided when a run starts: ``gradient_checkpointing: auto`` resolved from the
memory estimate, and offloaded checkpointing installed on the trainer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunelab.config.schema import Config

CHECKPOINTING_NOTE = "gradient checkpointing:"


def resolve_checkpointing(cfg: "Config", estimate: Any) -> str:
    """Write the run's choice into ``cfg.method.gradient_checkpointing`` (True, False or
    "offload"; LLaMA-Factory's disable_gradient_checkpointing / use_unsloth_gc folded in) and
    return the line that says which and why. ``auto`` follows the estimate: on when the step
    will not fit the GPU without it; off on CPU or without an estimate."""
    from tunelab.config.method import checkpointing_setting

    setting = checkpointing_setting(cfg.method)
    if setting != "auto":
        cfg.method.gradient_checkpointing = setting
        mode = {True: "on", False: "off", "offload": "offload"}[setting]
        return f"{CHECKPOINTING_NOTE} {mode} (as the recipe sets it)"
    if estimate is None or estimate.plan is None:
        cfg.method.gradient_checkpointing = False
        return f"{CHECKPOINTING_NOTE} off (auto: no memory estimate for this model)"
    cfg.method.gradient_checkpointing = bool(estimate.plan.gradient_checkpointing)
    return next(n for n in estimate.notes if n.startswith(CHECKPOINTING_NOTE))


def install_activation_offload(trainer: Any) -> None:
    """Keep the tensors saved for backward in CPU RAM (torch's ``save_on_cpu``) during every
    training forward; with checkpointing these are the layer inputs. The trainer's own
    ``compute_loss_context_manager`` (which every Hugging Face and TRL trainer enters around the
    forward) gains the context, so any stage's trainer gets it."""
    import torch

    original = trainer.compute_loss_context_manager

    def with_offload() -> Any:
        stack = original()
        stack.enter_context(torch.autograd.graph.save_on_cpu(pin_memory=torch.cuda.is_available()))
        return stack

    trainer.compute_loss_context_manager = with_offload
