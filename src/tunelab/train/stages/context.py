"""What every stage's ``build_trainer`` is given: the pieces ``tunelab train`` prepared."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.data.pipeline import PreparedData
    from tunelab.runs import RunDir


def hf_defaults_changed_by(config_class: type) -> dict[str, Any]:
    """TrainingArguments' own defaults of the fields whose default ``config_class`` changes."""
    import dataclasses

    from transformers import TrainingArguments

    def defaults(cls: type) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}

    hf = defaults(TrainingArguments)
    return {name: hf[name] for name, value in defaults(config_class).items()
            if name in hf and value != hf[name]}


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
        values plus the stage's own; a value TRL rejects becomes a ConfigError. A key the recipe
        leaves unset keeps Hugging Face's default, as in sft, where TRL chose another (TRL turns
        on bf16 and gradient checkpointing and raises the learning rate by default)."""
        from tunelab.train.workflow import build_arguments

        kwargs = {**hf_defaults_changed_by(config_class), **self.training_kwargs, **stage_values}
        return build_arguments(config_class, kwargs)

    def finish(self, trainer: Any) -> Any:
        """The trainer with transformers' console printer removed (our progress line replaces it)."""
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        return trainer
