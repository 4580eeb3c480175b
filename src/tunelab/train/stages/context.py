"""What every stage's ``build_trainer`` is given: the pieces ``tunelab train`` prepared."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.data.pipeline import PreparedData
    from tunelab.runs import RunDir


# TrainingArguments keys whose default TRL's configs change (see trl_config).
_TRL_CHANGED_DEFAULTS = ("learning_rate", "bf16", "gradient_checkpointing")


@dataclass
class StageContext:
    """The recipe, the model ready for training (adapters attached), its tokenizer with the
    run's chat template, the tokenised data, Hugging Face TrainingArguments, the run directory,
    the step plan, and the callbacks every stage must pass to its trainer (run events, progress,
    NaN guard, Ctrl-C stop)."""

    cfg: "Config"
    model: Any
    tokenizer: Any
    prepared: "PreparedData"
    args: Any
    run: "RunDir"
    plan: Any
    callbacks: list
    training_kwargs: dict

    def trl_config(self, config_class: type, **stage_values: Any) -> Any:
        """A TRL config (``DPOConfig``, ``KTOConfig``, ...) with the run's TrainingArguments
        values plus the stage's own; a value TRL rejects becomes a ConfigError.

        TRL's configs change a few of Hugging Face's defaults (bf16 on, gradient checkpointing
        on, a 1e-6 learning rate); a recipe that does not set them gets the defaults that
        ``--help`` documents and sft uses. Gradient checkpointing is the model's, set up by
        ``prepare_for_training`` from the recipe's own key."""
        from transformers import TrainingArguments

        from tunelab.train.workflow import build_arguments

        plain = TrainingArguments.__dataclass_fields__
        kwargs = {key: plain[key].default for key in _TRL_CHANGED_DEFAULTS}
        if self.cfg.method.gradient_checkpointing:
            # TRL switches it off around reference forwards and back on with these kwargs
            kwargs["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
        return build_arguments(config_class, {**kwargs, **self.training_kwargs, **stage_values})

    def finish(self, trainer: Any) -> Any:
        """The trainer with transformers' console printer removed (our progress line replaces it)."""
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        return trainer
