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
from tunelab.config.fields import coerce, suggest, type_hints
from tunelab.config.infer import InferArgs
from tunelab.config.method import MethodArgs
from tunelab.config.model import ModelArgs
from tunelab.config.output import OutputArgs
from tunelab.config.preference import PreferenceArgs
from tunelab.config.rl import RLArgs
from tunelab.config.spec import SECTIONS, TRAINING_SECTION, describe_keys, spec_for
from tunelab.config.training import DROPPED_TRAINING_KEYS, OWNED_ELSEWHERE, TRAINING_DEFAULTS
from tunelab.errors import ConfigError

__all__ = ["SECTIONS", "TRAINING_DEFAULTS", "Config", "build_config", "load_config"]


@dataclass
class Config:
    """A parsed recipe: one typed attribute per section (``cfg.method.lora_rank``), and
    ``training``, the Hugging Face TrainingArguments keys the recipe set (declared or passed
    through), which train/ hands to ``TrainingArguments``."""

    model: ModelArgs = field(default_factory=ModelArgs)
    data: DataArgs = field(default_factory=DataArgs)
    method: MethodArgs = field(default_factory=MethodArgs)
    preference: PreferenceArgs = field(default_factory=PreferenceArgs)
    rl: RLArgs = field(default_factory=RLArgs)
    output: OutputArgs = field(default_factory=OutputArgs)
    infer: InferArgs = field(default_factory=InferArgs)
    export: ExportArgs = field(default_factory=ExportArgs)
    training: dict[str, Any] = field(default_factory=dict)
    given: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def sections(self) -> dict[str, Any]:
        """Section name -> section object, in SECTIONS order."""
        return {name: getattr(self, name) for name in SECTIONS}

    def training_value(self, key: str) -> Any:
        """A TrainingArguments value as the run will see it (recipe, else our default, else HF's)."""
        if key in self.training:
            return self.training[key]
        if key in TRAINING_DEFAULTS:
            return TRAINING_DEFAULTS[key]
        try:
            return spec_for(key).default
        except KeyError:
            return _hf_training_fields()[key][1]

    def to_dict(self) -> dict[str, Any]:
        """Every setting, flat, as the run will use it (for manifests and previews)."""
        flat: dict[str, Any] = {}
        for section in self.sections.values():
            flat.update(dataclasses.asdict(section))
        training = {s.key: s.default for s in describe_keys() if s.section == TRAINING_SECTION[0]}
        flat.update({**training, **TRAINING_DEFAULTS, **self.training})
        return flat


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
    """A validated Config from a flat mapping of recipe keys (YAML or board values).

    Raises :class:`ConfigError` listing every problem at once: unknown keys (with the nearest
    valid names), values of the wrong type or out of range, and conflicting options.
    """
    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    training: dict[str, Any] = {}
    problems: list[ConfigError] = []
    notes: list[str] = []
    for key, value in raw.items():
        try:
            _place(key, _coerce_raw(value), values, training, notes)
        except ConfigError as exc:
            problems.extend(exc.problems)
    sections = {name: cls(**values[name]) for name, cls in SECTIONS.items()}
    cfg = Config(**sections, training=training, given=dict(raw), source=source, notes=notes)
    from tunelab.config.checks import config_problems

    found, advice = config_problems(cfg)
    cfg.notes.extend(advice)
    problems.extend(found)
    if problems:
        raise ConfigError.combine(problems, where=source)
    return cfg


def _place(key: str, value: Any, values: dict, training: dict, notes: list[str]) -> None:
    """Type one recipe value and put it where it belongs (a section field or ``training``)."""
    if key in DROPPED_TRAINING_KEYS:
        notes.append(f"'{key}' is ignored: {DROPPED_TRAINING_KEYS[key]}")
        return
    if key == "warmup_ratio":
        _check_ratio(key, value)
    try:
        spec = spec_for(key)
    except KeyError:
        spec = None
    if spec is not None and spec.section == TRAINING_SECTION[0]:
        training[spec.key] = coerce(value, type_hints(TRAINING_SECTION[1])[spec.key], key)
    elif spec is not None:
        values[spec.section][spec.key] = _section_value(spec, value, key)
    elif key in _hf_training_fields() and key not in OWNED_ELSEWHERE:
        training[key] = coerce(value, _hf_training_fields()[key][0], key)
    elif inert_key_note(key):  # a LLaMA-Factory key TuneLab accepts without acting on it
        notes.append(inert_key_note(key))
    else:
        raise _unknown_key(key)


def _section_value(spec: Any, value: Any, key: str) -> Any:
    cls = SECTIONS[spec.section]
    field_meta = {f.name: f.metadata for f in dataclasses.fields(cls)}[spec.key]
    if value == "" and field_meta.get("keep_empty"):
        return ""
    return coerce(value, type_hints(cls)[spec.key], key)


def _check_ratio(key: str, value: Any) -> None:
    ratio = coerce(value, float, key)
    if not 0 <= ratio < 1:
        raise ConfigError(f"a ratio must be in [0, 1), got {value}", where=f"key '{key}'",
                          key=key, value=value, allowed="a number in [0, 1)",
                          hint="use warmup_steps for a number of steps")


def _unknown_key(key: Any) -> ConfigError:
    key = str(key)  # YAML allows `1: x`; name it like any other key
    known = [name for s in describe_keys() for name in (s.key, *s.aliases)]
    close = suggest(key, known) or suggest(key, list(_hf_training_fields()))
    known_text = "`tunelab train --help` lists every key"
    hint = f"did you mean {', '.join(repr(c) for c in close)}? ({known_text})" if close else known_text
    return ConfigError("unknown key", where=f"key '{key}'", key=key, suggestions=tuple(close),
                       hint=hint)
