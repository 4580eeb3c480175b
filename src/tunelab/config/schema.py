"""The recipe: YAML + ``key=value`` overrides parsed into typed sections and validated.

Validation runs before any model or data is touched, so a typo costs a second, not a download.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunelab.config.compat import inert_key_note
from tunelab.config.data import DataArgs
from tunelab.config.export import ExportArgs
from tunelab.config.fields import check_choice, coerce, suggest, type_hints
from tunelab.config.infer import InferArgs
from tunelab.config.method import MethodArgs
from tunelab.config.model import ModelArgs
from tunelab.config.output import OutputArgs
from tunelab.errors import ConfigError

# name -> section dataclass. Commands that need more settings (infer, export, estimate) add
# their section here; every key of every section is accepted in every recipe, as in LLaMA-Factory.
SECTIONS: dict[str, type] = {
    "model": ModelArgs,
    "data": DataArgs,
    "method": MethodArgs,
    "output": OutputArgs,
    "infer": InferArgs,
    "export": ExportArgs,
}

# Defaults we choose differently from Hugging Face's TrainingArguments.
TRAINING_DEFAULTS: dict[str, Any] = {
    "report_to": "none",
    "logging_steps": 10,
    "save_steps": 500,
    "remove_unused_columns": False,
}

# Keys that older transformers (and so many LLaMA-Factory recipes) used, mapped to today's name.
_RENAMED_TRAINING_KEYS = {"warmup_ratio": "warmup_steps", "evaluation_strategy": "eval_strategy"}
# Keys transformers dropped with no replacement; accepted so old recipes run, and reported.
_DROPPED_TRAINING_KEYS = {"logging_dir": "transformers 5 writes TensorBoard logs under output_dir"}

# HF TrainingArguments keys that a TuneLab section owns (ours wins, and train/ passes it on).
_OWNED_ELSEWHERE = {"output_dir", "run_name", "resume_from_checkpoint", "gradient_checkpointing",
                    "do_train", "do_eval", "do_predict", "overwrite_output_dir"}


@dataclass
class Config:
    """A parsed recipe. Sections are attributes (``cfg.model.lora_rank`` style access via
    ``cfg.method``); ``training`` holds the Hugging Face TrainingArguments keys the recipe set."""

    sections: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    given: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    notes: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    def training_value(self, key: str) -> Any:
        """A TrainingArguments value as the run will see it (recipe, else our default, else HF's)."""
        if key in self.training:
            return self.training[key]
        if key in TRAINING_DEFAULTS:
            return TRAINING_DEFAULTS[key]
        return _hf_training_fields()[key][1]

    def to_dict(self) -> dict[str, Any]:
        """Every setting, flat, as the run will use it (for manifests and previews)."""
        flat: dict[str, Any] = {}
        for section in self.sections.values():
            flat.update(dataclasses.asdict(section))
        flat.update({**TRAINING_DEFAULTS, **self.training})
        return flat


def _key_index() -> dict[str, tuple[str, str]]:
    """Map every accepted key (and alias) to (section name, field name)."""
    index: dict[str, tuple[str, str]] = {}
    for name, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            index[f.name] = (name, f.name)
            for alias in f.metadata.get("aliases", ()):
                index[alias] = (name, f.name)
    return index


_HF_FIELDS: dict[str, tuple[Any, Any]] | None = None


def _hf_training_fields() -> dict[str, tuple[Any, Any]]:
    """name -> (type, default) of transformers.TrainingArguments (imported lazily: it pulls torch)."""
    global _HF_FIELDS
    if _HF_FIELDS is None:
        from transformers import TrainingArguments

        try:
            hints = typing.get_type_hints(TrainingArguments)
        except Exception:  # some versions carry unresolvable forward refs
            hints = {}
        _HF_FIELDS = {}
        for f in dataclasses.fields(TrainingArguments):
            if not f.init:
                continue
            default = f.default if f.default is not dataclasses.MISSING else None
            tp = hints.get(f.name, f.type if not isinstance(f.type, str) else Any)
            _HF_FIELDS[f.name] = (tp, default)
    return _HF_FIELDS


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``["lr=1e-4", "placeholders.name=Tuney"]`` -> nested dict of raw strings."""
    result: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} is not of the form key=value",
                              where="command line", hint="write e.g. learning_rate=2e-4")
        key, value = pair.split("=", 1)
        key = key.strip().lstrip("-").replace("-", "_")
        if "." in key:
            head, sub = key.split(".", 1)
            result.setdefault(head, {})
            if not isinstance(result[head], dict):
                result[head] = {}
            result[head][sub] = value
        else:
            result[key] = value
    return result


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("recipe file not found", where=str(path),
                          hint="pass the path of a YAML recipe, e.g. examples/tiny_lora_sft.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"not valid YAML ({getattr(exc, 'problem', exc)})", where=where) from None
    if not isinstance(data, dict):
        raise ConfigError("a recipe must be a mapping of key: value lines", where=str(path))
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _coerce_raw(value: Any) -> Any:
    """Strings from the command line that spell null become None; the rest stay for typing."""
    if isinstance(value, str) and value.strip() in ("null", "~", "None"):
        return None
    return value


def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None) -> Config:
    """Read a recipe and overrides into a validated :class:`Config`.

    Raises :class:`ConfigError` naming every unknown key (with the closest valid names), the
    first badly typed or out-of-range value, and any conflicting pair of options.
    """
    raw = read_yaml(path) if path else {}
    extra = overrides if isinstance(overrides, dict) else parse_overrides(overrides or [])
    raw = _merge(raw, extra)
    return build_config(raw, source=str(path) if path else None)


def build_config(raw: dict[str, Any], source: str | None = None) -> Config:
    index = _key_index()
    hf = _hf_training_fields()
    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    training: dict[str, Any] = {}
    unknown, notes = [], []
    for key, value in raw.items():
        value = _coerce_raw(value)
        if key in _DROPPED_TRAINING_KEYS:
            notes.append(f"'{key}' is ignored: {_DROPPED_TRAINING_KEYS[key]}")
            continue
        key = _renamed(key, value)
        if key in index:
            section, name = index[key]
            cls = SECTIONS[section]
            values[section][name] = _typed(cls, name, value, key)
        elif key in hf and key not in _OWNED_ELSEWHERE:
            training[key] = coerce(value, hf[key][0], key)
        elif inert_key_note(key):  # a LLaMA-Factory key TuneLab accepts without acting on it
            notes.append(inert_key_note(key))
        else:
            unknown.append(key)
    if unknown:
        raise _unknown_keys_error(unknown, list(index) + list(hf), source)
    sections = {name: cls(**values[name]) for name, cls in SECTIONS.items()}
    cfg = Config(sections=sections, training=training, given=dict(raw), source=source, notes=notes)
    from tunelab.config.checks import check_config

    check_config(cfg)
    return cfg


def _renamed(key: str, value: Any) -> str:
    if key == "warmup_ratio" and value is not None and float(value) >= 1:
        raise ConfigError(f"a ratio must be below 1, got {value}", where="key 'warmup_ratio'",
                          hint="use warmup_steps for a number of steps")
    return _RENAMED_TRAINING_KEYS.get(key, key)


def _typed(cls: type, name: str, value: Any, key: str) -> Any:
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    if value == "" and f.metadata.get("keep_empty"):
        return ""
    typed = coerce(value, type_hints(cls)[name], key)
    check_choice(typed, f.metadata.get("choices"), key)
    return typed


def _unknown_keys_error(unknown: list[str], known: list[str], source: str | None) -> ConfigError:
    lines = []
    for key in unknown:
        close = suggest(key, known)
        lines.append(f"'{key}'" + (f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""))
    return ConfigError("unknown key" + ("s " if len(unknown) > 1 else " ") + "; ".join(lines),
                       where=source or "recipe",
                       hint="`tunelab train --help` lists every key with its meaning")


def describe_keys() -> list[tuple[str, str, Any, str, tuple | None]]:
    """(section, key, default, help, choices) for every TuneLab key: drives --help and the board."""
    rows = []
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append((section, f.name, default, f.metadata.get("help", ""), f.metadata.get("choices")))
    return rows
