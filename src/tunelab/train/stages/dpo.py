"""dpo: preference training on chosen/rejected pairs with TRL.

``pref_loss`` picks the trainer: sigmoid (DPO), ipo and hinge are ``trl.DPOTrainer`` loss types;
orpo is ``trl.experimental.orpo.ORPOTrainer`` and simpo is ``trl.experimental.cpo.CPOTrainer``
with ``loss_type="simpo"`` (both reference-free). Every trainer is fed the ``prompt_ids`` /
``chosen_ids`` / ``rejected_ids`` that ``prepare_datasets`` cut from our chat template: the
subclasses below keep those tokens instead of re-tokenising the text. (Imported only when a
run uses the stage, so TRL is imported at the top.)
"""

from __future__ import annotations

from typing import Any

from trl import DPOTrainer
from trl.experimental.cpo import CPOTrainer
from trl.experimental.orpo import ORPOTrainer

from tunelab.train.stages.context import StageContext
from tunelab.train.stages.reference import drop_reference_copy, load_reference


def build_trainer(ctx: StageContext) -> Any:
    loss = ctx.cfg.preference.pref_loss
    if loss == "orpo":
        return _build_orpo(ctx)
    if loss == "simpo":
        return _build_simpo(ctx)
    return _build_dpo(ctx)


def _common(ctx: StageContext) -> dict[str, Any]:
    # The rows are tokenised already; TRL's configs keep TuneLab's TrainingArguments defaults
    # (ctx.trl_config), not TRL's own (learning rate 1e-6, bf16 and gradient checkpointing on).
    return {"beta": ctx.cfg.preference.pref_beta, "dataset_num_proc": None}


def dpo_loss_types(pref: Any) -> tuple[list[str], list[float]]:
    """TRL ``loss_type`` / ``loss_weights`` for a DPO-family ``pref_loss``: label smoothing on the
    sigmoid loss is TRL's robust DPO; ``pref_ftx`` adds TRL's ``sft`` term on the chosen answers."""
    base = "robust" if pref.pref_loss == "sigmoid" and pref.dpo_label_smoothing > 0 else pref.pref_loss
    if pref.pref_ftx > 0:
        return [base, "sft"], [1.0, pref.pref_ftx]
    return [base], [1.0]


def _build_dpo(ctx: StageContext) -> Any:
    from trl import DPOConfig

    pref = ctx.cfg.preference
    loss_types, weights = dpo_loss_types(pref)
    config = ctx.trl_config(DPOConfig, **_common(ctx), loss_type=loss_types, loss_weights=weights,
                            label_smoothing=pref.dpo_label_smoothing, max_length=None,
                            precompute_ref_log_probs=False)
    ref, described = load_reference(ctx.cfg)
    _log(described)
    trainer = _TokenisedDPOTrainer(
        model=ctx.model, ref_model=ref, args=config, train_dataset=ctx.prepared.train,
        eval_dataset=ctx.prepared.eval, processing_class=ctx.tokenizer, callbacks=ctx.callbacks)
    drop_reference_copy(ctx.cfg, trainer.model)
    return ctx.finish(trainer)


def _build_orpo(ctx: StageContext) -> Any:
    from trl.experimental.orpo import ORPOConfig

    config = ctx.trl_config(ORPOConfig, **_common(ctx), max_length=ctx.cfg.data.cutoff_len)
    _say_reference_free("orpo")
    return ctx.finish(_TokenisedORPOTrainer(
        model=ctx.model, args=config, train_dataset=ctx.prepared.train,
        eval_dataset=ctx.prepared.eval, processing_class=ctx.tokenizer, callbacks=ctx.callbacks))


def _build_simpo(ctx: StageContext) -> Any:
    from trl.experimental.cpo import CPOConfig

    pref = ctx.cfg.preference
    config = ctx.trl_config(CPOConfig, **_common(ctx), loss_type="simpo", cpo_alpha=pref.pref_ftx,
                            simpo_gamma=pref.simpo_gamma, label_smoothing=pref.dpo_label_smoothing,
                            max_length=ctx.cfg.data.cutoff_len)
    _say_reference_free("simpo")
    return ctx.finish(_TokenisedCPOTrainer(
        model=ctx.model, args=config, train_dataset=ctx.prepared.train,
        eval_dataset=ctx.prepared.eval, processing_class=ctx.tokenizer, callbacks=ctx.callbacks))


def _say_reference_free(loss: str) -> None:
    _log(f"reference model: none (pref_loss {loss} is reference-free)")


def _log(message: str) -> None:
    from tunelab.train.workflow import log

    log(message)


def legacy_columns(row: dict) -> dict:
    """Our ids in the column layout of TRL's experimental ORPO/CPO trainers: prompt, and
    prompt + answer with the prompt's labels masked (-100)."""
    prompt = list(row["prompt_ids"])
    out = {"prompt_input_ids": prompt, "prompt_attention_mask": [1] * len(prompt)}
    for side in ("chosen", "rejected"):
        ids = prompt + list(row[f"{side}_ids"])
        out[f"{side}_input_ids"] = ids
        out[f"{side}_attention_mask"] = [1] * len(ids)
        out[f"{side}_labels"] = [-100] * len(prompt) + list(row[f"{side}_ids"])
    return out


class _TokenisedDPOTrainer(DPOTrainer):
    """DPOTrainer that trains on the dataset's ``prompt_ids``/``chosen_ids``/``rejected_ids`` as
    given (TRL would extract a prompt and tokenise text again)."""

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        if {"prompt_ids", "chosen_ids", "rejected_ids"} <= set(dataset.column_names):
            return dataset
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)


class _TokenisedORPOTrainer(ORPOTrainer):
    def tokenize_row(self, feature, model=None):
        return legacy_columns(feature)


class _TokenisedCPOTrainer(CPOTrainer):
    def tokenize_row(self, feature, model=None):
        return legacy_columns(feature)
