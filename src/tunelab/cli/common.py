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


def absorb_late_pairs(parser: argparse.ArgumentParser, args: argparse.Namespace,
                      extras: list[str]) -> None:
    """Put ``key=value`` words that came after an option into ``args.overrides``.

    argparse fills positionals at the first chance, so in ``--query hi max_new_tokens=10`` the
    pair arrives after ``overrides`` was already taken (empty) and is left over. Every command
    with an ``overrides`` list takes such pairs (and a recipe path, if none was given yet); any
    other leftover word is the usual "unrecognized arguments" error.
    """
    unknown = []
    for word in extras:
        if hasattr(args, "overrides") and "=" in word and not word.startswith("-"):
            args.overrides = [*(args.overrides or []), word]
        elif getattr(args, "recipe", "") is None and word.endswith((".yaml", ".yml")):
            args.recipe = word
        else:
            unknown.append(word)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")


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


def keys_epilog(sections: tuple[str, ...] | None = None) -> str:
    """The recipe keys with their help text, grouped by section (from the config metadata)."""
    lines = ["recipe keys (YAML or key=value):"]
    current = None
    for section, key, default, help_text, choices in describe_keys():
        if sections and section not in sections:
            continue
        if section != current:
            lines.append(f"\n  [{section}]")
            current = section
        extra = f" {{{', '.join(map(str, choices))}}}" if choices else ""
        lines.append(f"  {key} (default: {default!r}){extra}")
        lines.extend(textwrap.wrap(help_text, width=92, initial_indent="      ",
                                   subsequent_indent="      "))
    lines.append("\n  plus every Hugging Face TrainingArguments key: learning_rate, num_train_epochs,")
    lines.append("  max_steps, per_device_train_batch_size, gradient_accumulation_steps, lr_scheduler_type,")
    lines.append("  warmup_ratio, logging_steps, save_steps, save_total_limit, bf16, fp16, report_to, seed, ...")
    return "\n".join(lines)
