"""kto: Kahneman-Tversky Optimization on answers tagged desirable or not, with TRL's KTOTrainer.

The rows arrive tokenised by ``data.encode_stages.encode_unpaired`` (``prompt_ids``,
``completion_ids``, ``label`` cut from one chat-template render), so the trainer is told to keep
them: its own dataset preparation would render and tokenise text columns again. What it still
adds is KTO's KL completions (each row paired with another row's answer of its micro-batch).
"""

from __future__ import annotations

from typing import Any

from tunelab.train.stages.context import StageContext


def build_trainer(ctx: StageContext) -> Any:
    from trl import KTOConfig

    from tunelab.train.stages.reference import drop_reference_copy, load_reference
    from tunelab.train.workflow import log

    pref = ctx.cfg.preference
    ref_model, described = load_reference(ctx.cfg)
    log(f"kto: {described}")
    _log_balance(ctx.prepared.train["label"], pref)
    # max_length None: the encoder already cut every row to cutoff_len. Sequential sampling is
    # KTOConfig's own default, kept whatever trl_config restores: each row's KL completion is
    # another row of its micro-batch, so the batches must be the ones _prepare_dataset paired.
    args = ctx.trl_config(KTOConfig, beta=pref.pref_beta, desirable_weight=pref.kto_chosen_weight,
                          undesirable_weight=pref.kto_rejected_weight, max_length=None,
                          train_sampling_strategy="sequential")
    trainer = _trainer_class()(
        model=ctx.model, ref_model=ref_model, args=args, train_dataset=ctx.prepared.train,
        eval_dataset=ctx.prepared.eval, processing_class=ctx.tokenizer, callbacks=ctx.callbacks)
    drop_reference_copy(ctx.cfg, trainer.model)
    return ctx.finish(trainer)


def _trainer_class() -> type:
    from trl import KTOTrainer

    class TokenisedKTOTrainer(KTOTrainer):
        """KTOTrainer that takes TuneLab's tokenised rows as they are."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            missing = {"prompt_ids", "completion_ids", "label"} - set(dataset.column_names)
            if missing:
                raise ValueError(f"kto rows lack the column(s) {sorted(missing)}")
            if not self.calculate_KL:
                return dataset
            # the same pairing as TRL's: answers rotated by one within each micro-batch, which
            # its sequential sampler keeps together
            return dataset.map(_rotated_completions, batched=True,
                               batch_size=args.per_device_train_batch_size)

    return TokenisedKTOTrainer


def _rotated_completions(batch: dict) -> dict:
    answers = batch["completion_ids"]
    return {"KL_completion_ids": answers[-1:] + answers[:-1]}


def _log_balance(labels: list, pref: Any) -> None:
    """KTO weighs the two kinds of answers; with unequal counts the paper's rule (eq. 8) asks
    for chosen_weight x desirable to be 1 to 4/3 times rejected_weight x undesirable."""
    from tunelab.train.workflow import log

    desirable = sum(1 for label in labels if label)
    undesirable = len(labels) - desirable
    log(f"kto: {desirable} desirable and {undesirable} undesirable rows "
        f"(kto_chosen_weight {pref.kto_chosen_weight:g}, kto_rejected_weight {pref.kto_rejected_weight:g})")
    if not desirable or not undesirable:
        log("kto: WARNING: the training data has only one kind of answer; KTO learns from both")
        return
    ratio = pref.kto_chosen_weight * desirable / (pref.kto_rejected_weight * undesirable)
    if not 1 <= ratio <= 4 / 3 and desirable != undesirable:
        low = pref.kto_rejected_weight * undesirable / desirable
        log(f"kto: note: the counts differ; the KTO paper suggests kto_chosen_weight between "
            f"{low:.2f} and {low * 4 / 3:.2f} for this data")
