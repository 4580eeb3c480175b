"""Recipe controls drawn from the recipe spec (``describe_keys``), and the form's values turned
back into a recipe validated by the same config code as the CLI."""

from __future__ import annotations

from typing import Any

import yaml

from tunelab.errors import ConfigError
from tunelab.ui.i18n import register, t

# The Train tab's numbers, in the order the issue lists them, grouped as the page shows them.
COMMON_KEYS: dict[str, tuple[str, ...]] = {
    "training": ("learning_rate", "num_train_epochs", "max_steps", "max_grad_norm",
                 "per_device_train_batch_size", "gradient_accumulation_steps", "lr_scheduler_type",
                 "warmup_steps", "logging_steps", "save_steps", "save_total_limit", "bf16", "fp16"),
    "data": ("cutoff_len", "max_samples", "val_size", "packing", "train_on_prompt"),
    "lora": ("lora_rank", "lora_alpha", "lora_dropout", "lora_target", "additional_target", "use_dora",
             "use_rslora"),
    "freeze": ("freeze_trainable_layers",),
    # Shown only for the stages they apply to (each key's `when`); a stage not yet in the
    # registry simply never shows its group.
    "preference": ("pref_beta", "pref_loss", "pref_ftx", "simpo_gamma", "dpo_label_smoothing",
                   "kto_chosen_weight", "kto_rejected_weight", "ref_model"),
    "rewards": ("reward_funcs", "reward_model", "reward_model_type", "reward_model_adapters",
                "reward_model_quantization_bit"),
    "online": ("num_generations", "max_completion_length", "grpo_beta", "grpo_epsilon", "loss_type"),
}
AUTO = "auto"


def spec_map() -> dict[str, Any]:
    """key -> KeySpec for every key the spec describes."""
    from tunelab.config import describe_keys

    return {spec.key: spec for spec in describe_keys()}


def register_spec_strings(specs: dict[str, Any], keys: list[str]) -> None:
    """i18n entries for ``keys``: the label is the recipe key itself (the same word in a YAML
    file, either language), the hint its help text (help / help_zh of the spec) plus its range.
    A key whose spec has no Chinese help yet shows the English one rather than nothing."""
    strings = {}
    for spec in (specs[k] for k in keys):
        strings[f"key.{spec.key}"] = (spec.key, spec.key)
        rng = spec.range_text() if hasattr(spec, "range_text") else None
        suffix = (f" ({rng})", f"（{rng}）") if rng else ("", "")
        strings[f"keyhelp.{spec.key}"] = (spec.help + suffix[0], (spec.help_zh or spec.help) + suffix[1])
    register(strings)


def make_control(spec: Any, lang: str, value: Any = None) -> Any:
    """The Gradio control for one key: type, default, range and choices from its spec."""
    import gradio as gr

    value = spec.default if value is None else value
    common = dict(label=t(f"key.{spec.key}", lang), info=t(f"keyhelp.{spec.key}", lang),
                  elem_id=f"key-{spec.key}")
    base = spec.type.split("|")[0]
    if spec.choices:
        choices = [str(c) for c in spec.choices] + ([AUTO] if spec.optional else [])
        return gr.Dropdown(choices, value=AUTO if value is None else str(value), **common)
    if base == "bool":
        if spec.optional:
            return gr.Dropdown([AUTO, "true", "false"], value=_tri(value), **common)
        return gr.Checkbox(value=bool(value), **common)
    if base in ("int", "float") and spec.optional:  # empty box = unset (a Number cannot be empty)
        return gr.Textbox(value="" if value is None else str(value), placeholder=AUTO, **common)
    if base in ("int", "float"):
        return gr.Number(value=value, precision=0 if base == "int" else None, minimum=spec.min,
                         maximum=spec.max, **common)
    if base == "list[str]":
        return gr.Textbox(value=", ".join(value) if isinstance(value, list) else (value or ""), **common)
    return gr.Textbox(value="" if value is None else str(value), **common)


def _tri(value: Any) -> str:
    return AUTO if value is None else ("true" if value else "false")


def control_value(spec: Any, raw: Any) -> Any:
    """A control's value as the recipe value (None: leave the key to its default)."""
    if raw is None or (isinstance(raw, str) and raw.strip() in ("", AUTO)):
        return None
    base = spec.type.split("|")[0]
    if base == "bool" and isinstance(raw, str):
        return raw == "true"
    if base in ("int", "float"):
        return _number(spec, raw, base)
    if base == "list[str]":
        return [part.strip() for part in str(raw).split(",") if part.strip()]
    if spec.choices and isinstance(raw, str):
        return next((c for c in spec.choices if str(c) == raw), raw)
    return raw


def _number(spec: Any, raw: Any, base: str) -> int | float:
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{raw!r} is not a number", where=f"key '{spec.key}'",
                          hint=f"type a{'n integer' if base == 'int' else ' number'}, e.g. {spec.default}") from None
    if base == "int":
        if number != int(number):
            raise ConfigError(f"{raw!r} is not a whole number", where=f"key '{spec.key}'")
        return int(number)
    return number


def display_value(spec: Any, value: Any) -> Any:
    """A recipe value as its control shows it (the inverse of :func:`control_value`)."""
    base = spec.type.split("|")[0]
    if spec.choices:
        return AUTO if value is None else str(value)
    if base == "bool" and spec.optional:
        return _tri(value)
    if base in ("int", "float") and spec.optional:
        return "" if value is None else str(value)
    if base == "list[str]":
        return ", ".join(value) if isinstance(value, list) else (value or "")
    return value


def parse_extra(text: str) -> dict[str, Any]:
    """The "extra keys" box: YAML (``key: value`` lines) or ``key=value`` lines."""
    text = (text or "").strip()
    if not text:
        return {}
    if all("=" in line and ":" not in line.split("=", 1)[0] for line in text.splitlines() if line.strip()):
        from tunelab.config.schema import parse_overrides

        return parse_overrides([line.strip() for line in text.splitlines() if line.strip()])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", where="extra keys",
                          hint="write one `key: value` (or key=value) per line") from None
    if not isinstance(data, dict):
        raise ConfigError("must be `key: value` lines", where="extra keys",
                          hint="e.g. weight_decay: 0.01")
    return data


def validate(recipe: dict[str, Any]):
    """The Config the CLI would build from this recipe (ConfigError otherwise)."""
    from tunelab.config import build_config

    return build_config(dict(recipe), source="the board's form")
