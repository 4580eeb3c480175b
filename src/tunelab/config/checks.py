"""Validation of a whole recipe: every key's choices and range (from the spec), the few
single-key rules a range cannot say, and cross-key rules (pairs of options that cannot be used
together). All problems are collected, so a recipe's author sees them all at once.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.config.distributed import sharding_problems
from tunelab.config.spec import KeySpec, describe_keys
from tunelab.errors import ConfigError
from tunelab.train.stages import ONLINE_STAGES, RETIRED_STAGES

if TYPE_CHECKING:
    from tunelab.config.schema import Config


def check_config(cfg: "Config") -> None:
    """Raise one ConfigError listing every problem of the recipe; return None when it is valid."""
    problems, _ = config_problems(cfg)
    if problems:
        raise ConfigError.combine(problems, where=cfg.source)


def config_problems(cfg: "Config") -> tuple[list[ConfigError], list[str]]:
    """(problems, notes): every rule the recipe breaks, and keys set that have no effect."""
    values = cfg.to_dict()
    problems = [p for spec in describe_keys() if (p := _value_problem(spec, values.get(spec.key)))]
    problems += _single_key_problems(cfg)
    problems += _conflicts(cfg)
    inert, notes = _inapplicable(cfg, values)
    return problems + inert, notes


def _value_problem(spec: KeySpec, value: Any) -> ConfigError | None:
    if spec.key == "stage" and value in RETIRED_STAGES:  # say why, not just "not one of"
        why, instead = RETIRED_STAGES[value]
        return ConfigError(why, where="key 'stage'", key="stage", value=value,
                           allowed=spec.allowed_text(), hint=instead)
    why = spec.violation(value)
    if why is None:
        return None
    allowed = spec.allowed_text()
    hint = None
    if spec.choices and not isinstance(value, list):
        import difflib

        close = difflib.get_close_matches(str(value), [str(c) for c in spec.choices], n=1)
        hint = f"did you mean '{close[0]}'?" if close else None
    return ConfigError(f"{why}; allowed: {allowed}", where=f"key '{spec.key}'", key=spec.key,
                       value=value, allowed=allowed, hint=hint)


def _problem(key: str, value: Any, why: str, allowed: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"{why}; allowed: {allowed}", where=f"key '{key}'", key=key, value=value,
                       allowed=allowed, hint=hint)


def _single_key_problems(cfg: "Config") -> list[ConfigError]:
    found = []
    val_size = cfg.data.val_size
    if isinstance(val_size, (int, float)) and val_size >= 1 and not float(val_size).is_integer():
        found.append(_problem("val_size", val_size, f"{val_size} is neither a fraction nor a count",
                              "a fraction in [0, 1) or a whole number of rows >= 1"))
    if cfg.data.streaming:
        found.append(_problem("streaming", True, "streaming datasets are not supported yet", "false",
                              "remove it; use max_samples to train on part of a large dataset"))
    found += _output_dir_problems(cfg.output.output_dir)
    found += sharding_problems(cfg)
    if cfg.method.stage in ONLINE_STAGES:
        found += _online_problems(cfg)
    return found


def _online_problems(cfg: "Config") -> list[ConfigError]:
    """Something to score with (reward names spelled right, the functions are imported when
    training starts; a reward model that is one), and sampling that can tell a group's
    completions apart."""
    from tunelab.rewards import allowed_text, name_problem
    from tunelab.rewards.reward_model import reward_model_problems

    stage, names = cfg.method.stage, cfg.rl.reward_funcs or []
    found = [_problem("reward_funcs", name, why, allowed_text()) for name in names
             if (why := name_problem(name))]
    if not names and not cfg.rl.reward_model:
        found.append(_problem("reward_funcs", None, f"stage {stage} needs at least one reward "
                              "function or a reward_model", allowed_text(),
                              "e.g. reward_funcs: accuracy,format, or reward_model: <your rm run>"))
    found += reward_model_problems(cfg)
    if not cfg.infer.do_sample or cfg.infer.temperature == 0:
        key = "do_sample" if not cfg.infer.do_sample else "temperature"
        found.append(_problem(key, getattr(cfg.infer, key), f"{stage} compares several sampled "
                              "completions per prompt; greedy decoding makes them all the same",
                              "do_sample: true and temperature > 0 (e.g. 1.0)"))
    return found


def _output_dir_problems(output_dir: str | None) -> list[ConfigError]:
    if not output_dir:
        return []
    path = Path(output_dir)
    for place in (path, *path.parents):
        if place.exists() and not place.is_dir():
            return [_problem("output_dir", output_dir, f"{place} is a file, not a folder",
                             "a folder path (absent, empty, or a run of this recipe)")]
    return []


def check_can_train(cfg: "Config") -> None:
    """Raise ConfigError when this machine lacks what the recipe needs to train (other commands,
    e.g. estimating a DeepSpeed recipe for another machine, do not need it)."""
    from tunelab.config.machine import machine_problems

    problems = machine_problems(cfg)
    if problems:
        raise ConfigError.combine(problems, where=cfg.source)
    if cfg.method.stage in ONLINE_STAGES and cfg.rl.use_vllm:
        _check_vllm()


def _check_vllm() -> None:
    import torch

    unusable = "use_vllm needs a CUDA GPU, and this machine has none" if not torch.cuda.is_available() \
        else "use_vllm needs vLLM, which is not installed" if importlib.util.find_spec("vllm") is None \
        else None
    if unusable:
        raise ConfigError(unusable, where="key 'use_vllm'", key="use_vllm", value=True,
                          allowed="true on a CUDA machine with `pip install 'tunelab[vllm]'`",
                          hint="remove use_vllm: the completions are then generated with "
                               "transformers (slower, any device)")


def _conflict(a: str, b: str, why: str, fix: str) -> ConfigError:
    return ConfigError(f"conflicts with '{b}': {why}", where=f"key '{a}'", key=a, hint=fix)


def _conflicts(cfg: "Config") -> list[ConfigError]:
    m, d, meth = cfg.model, cfg.data, cfg.method
    found = []
    if m.quantization_bit is not None and meth.finetuning_type != "lora":
        found.append(_conflict(
            "quantization_bit", "finetuning_type",
            f"a {m.quantization_bit}-bit base cannot be trained with finetuning_type="
            f"{meth.finetuning_type}; only adapters train on a quantized base",
            "set finetuning_type: lora (QLoRA) or remove quantization_bit"))
    if meth.pissa_init and m.quantization_bit is not None:
        found.append(_conflict("pissa_init", "quantization_bit",
                               "PiSSA needs the full-precision weights", "remove one of them"))
    if cfg.training.get("bf16") and cfg.training.get("fp16"):
        found.append(_conflict("bf16", "fp16", "mixed precision has one dtype",
                               "keep only one of them"))
    if d.packing and meth.stage not in ("pt", "sft"):
        found.append(_conflict("packing", "stage", f"packing applies to pt and sft, not {meth.stage}",
                               "remove packing or use stage: sft"))
    batch = int(cfg.training_value("per_device_train_batch_size"))
    if meth.stage == "kto" and batch < 2:
        # KTO estimates its KL term from the other answers of the same micro-batch
        found.append(_conflict("per_device_train_batch_size", "stage",
                               f"stage kto needs at least 2 rows per micro-batch, got {batch}",
                               "set per_device_train_batch_size: 2 or more"))
    return found + _reference_free_problems(cfg)


# The reference-model keys: orpo and simpo (TRL's ORPO/CPO trainers) take no reference at all.
_REFERENCE_KEYS = ("ref_model", "ref_model_adapters", "ref_model_quantization_bit")
_REFERENCE_FREE_LOSSES = ("orpo", "simpo")


def _reference_free_problems(cfg: "Config") -> list[ConfigError]:
    """A reference model named for a dpo loss that has none: it would be silently unused."""
    pref = cfg.preference
    if cfg.method.stage != "dpo" or pref.pref_loss not in _REFERENCE_FREE_LOSSES:
        return []
    return [_conflict(key, "pref_loss", f"pref_loss {pref.pref_loss} is reference-free: it "
                      "loads no reference model, so this key would be ignored",
                      f"remove {key}, or use a loss with a reference model (pref_loss: "
                      "sigmoid, ipo or hinge)")
            for key in _REFERENCE_KEYS if getattr(pref, key) not in (None, [])]


def _inapplicable(cfg: "Config", values: dict) -> tuple[list[ConfigError], list[str]]:
    """Keys the recipe set (or a caller changed from the default) whose ``when`` does not hold.
    A switch turned on for another method (use_dora with full) is a conflict: the user expects
    an effect that cannot happen; any other such key is only noted."""
    problems, notes = [], []
    given = set(cfg.given)
    for spec in describe_keys():
        was_set = {spec.key, *spec.aliases} & given or values.get(spec.key) != spec.default
        if not was_set or spec.applies(values):
            continue
        condition = " and ".join(f"{k}: {'/'.join(map(str, v))}" for k, v in spec.when.items())
        others = ", ".join(f"{k}={values.get(k)}" for k in spec.when)
        if spec.type == "bool" and values.get(spec.key) is True and spec.default is False:
            problems.append(_conflict(spec.key, next(iter(spec.when)),
                                      f"it applies only with {condition}, not {others}",
                                      f"remove {spec.key} or set {condition}"))
        else:
            notes.append(f"'{spec.key}' has no effect with {others} (it applies with {condition})")
    return problems, notes
