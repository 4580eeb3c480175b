"""Argument helpers shared by commands that take a recipe plus key=value overrides."""

from __future__ import annotations

import argparse
import sys
import textwrap

from tunelab.config import describe_keys, load_config


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", help="YAML recipe (LLaMA-Factory keys work)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="override any recipe key, e.g. learning_rate=2e-4 num_train_epochs=1")


def load_recipe(args: argparse.Namespace, extra: dict | None = None):
    """The validated Config from ``args.recipe`` + ``args.overrides`` (+ values from flags)."""
    recipe, overrides = args.recipe, list(args.overrides or [])
    if recipe and "=" in recipe and not recipe.endswith((".yaml", ".yml")):
        recipe, overrides = None, [recipe, *overrides]
    pairs = overrides + [f"{k}={v}" for k, v in (extra or {}).items() if v is not None]
    cfg = load_config(recipe, pairs)
    for note in cfg.notes:
        print(f"tunelab: note: {note}", file=sys.stderr)
    return cfg


def keys_epilog(groups: tuple[str, ...] | None = None) -> str:
    """The recipe keys (of ``groups``, default all) with type, default, range, choices and help,
    grouped as the spec groups them."""
    lines = ["recipe keys (YAML or key=value):"]
    by_group: dict[str, list] = {}
    for spec in describe_keys():
        if groups is None or spec.group in groups:
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


def _key_line(spec) -> str:
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
