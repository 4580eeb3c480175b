"""Argument helpers shared by commands that take a recipe plus key=value overrides."""

from __future__ import annotations

import argparse
import sys
import textwrap
from dataclasses import dataclass
from typing import Any

from tunelab.config import Config, KeySpec, describe_keys, load_config, spec_for


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", help="YAML recipe (LLaMA-Factory keys work)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override any recipe key, e.g. learning_rate=2e-4 num_train_epochs=1")


def load_recipe(args: argparse.Namespace, extra: dict | None = None) -> Config:
    """The validated Config from ``args.recipe`` + ``args.overrides`` (+ values from flags)."""
    recipe, overrides = args.recipe, list(args.overrides or [])
    if recipe and "=" in recipe and not recipe.endswith((".yaml", ".yml")):
        recipe, overrides = None, [recipe, *overrides]
    pairs = overrides + [f"{k}={v}" for k, v in (extra or {}).items() if v is not None]
    cfg = load_config(recipe, pairs)
    for note in cfg.notes:
        print(f"tunelab: note: {note}", file=sys.stderr)
    return cfg


@dataclass(frozen=True)
class KeyFlag:
    """A command-line flag that sets one recipe key. ``value`` makes it a switch that sets the
    key to that value; ``repeat`` lets it be given several times (a list key); ``note``
    replaces the key's help where the flag means something narrower."""

    flag: str
    key: str
    value: Any = None
    note: str = ""
    repeat: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def add_key_flags(parser: argparse.ArgumentParser, flags: tuple[KeyFlag, ...]) -> None:
    """Add each flag with its help and choices taken from the recipe spec of its key."""
    for item in flags:
        spec = spec_for(item.key)
        text = item.note or spec.help
        if item.value is not None:
            parser.add_argument(item.flag, action="store_true",
                                help=f"{text} (sets {item.key}={item.value})")
            continue
        choices = spec.choices if spec.choices and spec.type != "list[str]" else None
        parser.add_argument(item.flag, choices=choices, action="append" if item.repeat else "store",
                            help=f"{text} ({item.key}{_range_note(spec)})")


def _range_note(spec: KeySpec) -> str:
    return f", {spec.range_text()}" if spec.range_text() else ""


def flag_values(args: argparse.Namespace, flags: tuple[KeyFlag, ...]) -> dict[str, Any]:
    """Recipe keys set by the flags that were given (flags win over the recipe)."""
    extra: dict[str, Any] = {}
    for item in flags:
        given = getattr(args, item.dest, None)
        if item.value is not None and given:
            extra[item.key] = item.value
        elif item.value is None and given is not None:
            extra[item.key] = ",".join(given) if item.repeat else given
    return extra


def keys_epilog(groups: tuple[str, ...] | None = None, keys: tuple[str, ...] = ()) -> str:
    """The recipe keys of ``groups`` (default: all) plus ``keys``, with type, default, range,
    choices, condition and help, grouped as the spec groups them."""
    lines = ["recipe keys (YAML or key=value):"]
    by_group: dict[str, list[KeySpec]] = {}
    for spec in describe_keys():
        if groups is None or spec.group in groups or spec.key in keys:
            by_group.setdefault(spec.group, []).append(spec)
    for group, specs in by_group.items():
        lines.append(f"\n  [{group}]")
        for spec in specs:
            lines.append("  " + _key_line(spec))
            lines.extend(textwrap.wrap(spec.help, width=92, initial_indent="      ",
                                       subsequent_indent="      "))
    if groups is None or "training" in groups:
        lines.append("\n  Any other Hugging Face TrainingArguments key is passed on unchanged.")
    return "\n".join(lines)


def _key_line(spec: KeySpec) -> str:
    kind = spec.type + ("|null" if spec.optional else "")
    parts = [f"{spec.key} ({kind}, default: {spec.default!r})"]
    if spec.choices:
        shown = [str(c) for c in spec.choices]
        parts.append("{" + ", ".join(shown[:14]) + (", ..." if len(shown) > 14 else "") + "}")
    if spec.range_text():
        parts.append(spec.range_text())
    if spec.when:
        parts.append("when " + ", ".join(f"{k}={'/'.join(map(str, v))}" for k, v in spec.when.items()))
    if spec.aliases:
        parts.append("alias " + ", ".join(spec.aliases))
    return " ".join(parts)
