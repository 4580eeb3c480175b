"""pt and sft: next-token loss on raw text or on the assistant tokens, with Hugging Face Trainer
(our chunked-loss Trainer by default)."""

from __future__ import annotations

from typing import Any

from tunelab.train.stages.context import StageContext


def build_trainer(ctx: StageContext) -> Any:
    from transformers import Trainer

    from tunelab.train.loss import ChunkedLossTrainer

    trainer_class = ChunkedLossTrainer if ctx.cfg.method.chunked_loss else Trainer
    flatten = ctx.model.config._attn_implementation == "flash_attention_2"
    collator = ctx.prepared.collator(ctx.tokenizer.pad_token_id, flatten=flatten,
                                     padding_free=ctx.cfg.data.padding_free)
    return ctx.finish(trainer_class(
        model=ctx.model, args=ctx.args, train_dataset=ctx.prepared.train,
        eval_dataset=ctx.prepared.eval, data_collator=collator, processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks))
