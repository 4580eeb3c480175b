"""What is trained: the stage and the fine-tuning method (LoRA, DoRA, freeze, full)."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option

STAGES = ("pt", "sft", "rm", "dpo", "kto", "ppo", "grpo")
IMPLEMENTED_STAGES = ("pt", "sft")


@dataclass
class MethodArgs:
    stage: str = option("sft", "Training stage.", choices=STAGES)
    do_train: bool = option(True, "Run training (kept for LLaMA-Factory recipes).")
    do_eval: bool = option(False, "Evaluate on the eval split after training.")
    do_predict: bool = option(False, "Generate predictions (see `tunelab evaluate`).")
    finetuning_type: str = option("lora", "lora (adapters), freeze (train the last layers), full.",
                                  choices=("lora", "freeze", "full"))
    lora_rank: int = option(8, "LoRA rank r.")
    lora_alpha: int | None = option(None, "LoRA scale alpha. Unset: 2 x lora_rank.")
    lora_dropout: float = option(0.0, "Dropout on the LoRA path.")
    lora_target: list[str] = option(None, "Modules that get LoRA: 'all' (every linear layer but the "
                                    "head) or names like q_proj,v_proj.", factory=lambda: ["all"])
    additional_target: list[str] | None = option(
        None, "Modules trained fully and saved beside the adapter, e.g. embed_tokens,lm_head.")
    use_dora: bool = option(False, "Weight-decomposed LoRA (DoRA).")
    use_rslora: bool = option(False, "Rank-stabilised LoRA scaling (alpha / sqrt(r)).")
    pissa_init: bool = option(False, "Initialise LoRA from principal singular vectors (PiSSA).")
    create_new_adapter: bool = option(False, "With adapter_name_or_path: train a new adapter on top "
                                      "of the merged old ones instead of continuing them.")
    freeze_trainable_layers: int = option(2, "freeze: train the last N layers (negative: the first N).")
    freeze_trainable_modules: list[str] = option(None, "freeze: module names inside the trainable "
                                                 "layers, or 'all'.", factory=lambda: ["all"])
    freeze_extra_modules: list[str] | None = option(None, "freeze: extra top-level modules to train, "
                                                    "e.g. embed_tokens,norm.")
    chunked_loss: bool = option(
        True, "Compute the loss from hidden states in chunks, only where labels are, without the "
        "full logits tensor (same loss, far less memory). Models whose logits are soft-capped or "
        "scaled, and multi-process runs, use the model's own loss.")
    gradient_checkpointing: bool | None = option(
        None, "Recompute activations to save memory. Unset: off (it costs ~30% speed); turn it on "
        "when memory is short.", aliases=("activation_checkpointing",))
