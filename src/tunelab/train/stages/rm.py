"""rm: a pairwise reward model, trained with TRL's RewardTrainer.

The model is the base with a one-output score head (a sequence classifier); the reward of a
text is the head's output at its last token. The loss is -log sigmoid(r_chosen - r_rejected)
per pair, and TRL logs the pairs' accuracy (chosen scored higher) and mean margin, which the
run's events record. LoRA trains and saves the head beside the adapter; freeze trains it with
the chosen layers; full trains everything.
"""

from __future__ import annotations

from typing import Any

from tunelab.train.stages.context import StageContext


def load_model(cfg: Any) -> Any:
    """The base as a reward model, with LoRA/DoRA/QLoRA/freeze/full applied."""
    from tunelab.model import load_model as load_base
    from tunelab.model import prepare_for_training

    return prepare_for_training(load_base(cfg.model, cfg.training, head="reward"), cfg)


def whole_texts(dataset: Any) -> Any:
    """Our pairwise rows (prompt_ids, chosen_ids, rejected_ids: the answers alone) as the
    processed rows RewardTrainer reads: chosen_ids / rejected_ids of the whole text, prompt
    first. The ids are concatenated, not re-tokenised, so they are exactly the template's."""
    def join(row: dict) -> dict:
        return {"chosen_ids": row["prompt_ids"] + row["chosen_ids"],
                "rejected_ids": row["prompt_ids"] + row["rejected_ids"]}

    return dataset.map(join, remove_columns=["prompt_ids"], keep_in_memory=True,
                       desc="joining prompts and answers")


def build_trainer(ctx: StageContext) -> Any:
    from trl import RewardConfig, RewardTrainer

    # max_length=None: our encoder already cut every pair to cutoff_len; TRL would drop rows.
    args = ctx.trl_config(RewardConfig, max_length=None)
    evals = whole_texts(ctx.prepared.eval) if ctx.prepared.eval is not None else None
    trainer = RewardTrainer(model=ctx.model, args=args, train_dataset=whole_texts(ctx.prepared.train),
                            eval_dataset=evals, processing_class=ctx.tokenizer,
                            callbacks=ctx.callbacks)
    _keep_float_head(trainer)
    return ctx.finish(trainer)


def _keep_float_head(trainer: Any) -> None:
    """RewardTrainer casts a quantized model's trainable weights to bfloat16, which a CPU
    float32 QLoRA run cannot multiply with its float32 activations: give them back the dtype
    of the activations (the compute dtype), before the optimizer is built."""
    import torch

    model = trainer.model
    if not (getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False)):
        return
    compute = model.get_input_embeddings().weight.dtype
    if compute == torch.bfloat16:
        return
    for name, param in model.named_parameters():
        if param.requires_grad and param.dtype == torch.bfloat16:
            param.data = param.data.to(compute)
