"""What every stage's ``build_trainer`` is given: the pieces ``tunelab train`` prepared."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.data.pipeline import PreparedData
    from tunelab.runs import RunDir


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

        A TrainingArguments key the recipe leaves unset keeps transformers' default (the one
        ``--help`` shows), not the one TRL's config chooses (learning_rate 1e-6, bf16 on,
        gradient_checkpointing on: the model was already prepared for that key, by
        ``prepare_for_training`` from the recipe's own key).
        """
        from tunelab.train.workflow import build_arguments

        kwargs = hf_defaults_changed_by(config_class)
        checkpointing = self.cfg.method.gradient_checkpointing  # resolved: True, False or "offload"
        if checkpointing:
            # TRL switches it off around reference forwards and back on with these kwargs: the
            # same as prepare_for_training's (offload needs the reentrant kind)
            kwargs["gradient_checkpointing_kwargs"] = {"use_reentrant": checkpointing == "offload"}
        return build_arguments(config_class, {**kwargs, **self.training_kwargs, **stage_values})

    def finish(self, trainer: Any) -> Any:
        """The trainer with transformers' console printer removed (our progress line replaces it)."""
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        return trainer


def hf_defaults_changed_by(config_class: type) -> dict[str, Any]:
    """TrainingArguments field -> its default, for the fields whose default ``config_class``
    (a TrainingArguments subclass) changes."""
    import dataclasses

    from transformers import TrainingArguments

    def defaults(cls: type) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(cls)
                if f.init and f.default is not dataclasses.MISSING}

    base, mine = defaults(TrainingArguments), defaults(config_class)
    return {name: value for name, value in base.items() if name in mine and mine[name] != value}
