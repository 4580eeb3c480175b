"""What changes when the export is a reward model (stage rm).

A reward model is exported as a full ``*ForSequenceClassification`` model with one output
(``num_labels: 1``): the base with its score head, adapters merged. transformers reads the
reward at a text's last token that is not padding, so the config must name the pad token the
run trained and scores with (the tokenizer's). It is verified on rewards instead of logits
(``verify.Probe``), and what hands a chat model to other runtimes is refused or left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError

if TYPE_CHECKING:
    from tunelab.config.schema import Config

_SCORE_HINT = ("the exported folder scores texts with `tunelab score FOLDER`, `tunelab api "
               "--model FOLDER` (POST /v1/score) or transformers' AutoModelForSequenceClassification")


def check_reward_options(cfg: "Config") -> None:
    """Refuse, before any weights are loaded, export options that only make sense for a chat
    model. The Modelfile is on by default, so it is refused only when the recipe asks for it."""
    problems = []
    gguf = [kind for kind in cfg.export.export_gguf or [] if kind != "none"]
    if gguf:
        problems.append(ConfigError(
            f"a reward model cannot be written as GGUF ({', '.join(gguf)}): TuneLab's GGUF files "
            "are llama.cpp language models, which have no place for the score head",
            where="key 'export_gguf'", key="export_gguf", value=gguf,
            hint=f"remove export_gguf (--gguf); {_SCORE_HINT}"))
    if "export_modelfile" in cfg.given and cfg.export.export_modelfile:
        problems.append(ConfigError(
            "a reward model gets no Ollama Modelfile: Ollama runs chat models, and a reward "
            "model only scores texts", where="key 'export_modelfile'", key="export_modelfile",
            value=True, hint=f"remove export_modelfile; {_SCORE_HINT}"))
    if problems:
        raise ConfigError.combine(problems, where=cfg.source)


def set_pad_token(model: Any, tokenizer: Any) -> None:
    """Name the tokenizer's pad token in the model's config, as TRL's RewardTrainer did for
    training and `tunelab score` does for scoring, so the export reads the same last token."""
    model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
