"""``tunelab chat [recipe.yaml] [key=value ...] [--model PATH] [--adapter DIR] [--query TEXT]``."""

from __future__ import annotations

import argparse
import sys

from tunelab.cli.common import (KeyFlag, add_key_flags, add_recipe_arguments, flag_values,
                                keys_epilog, load_recipe)

DESCRIPTION = """Chat in the terminal with a model, or with adapters trained on it (unmerged).

The chat template is the one the adapter was trained with (saved in its run directory), and
enable_thinking / default_system are read from the same recipe keys as in training.

  tunelab chat --adapter saves/demo                    base model read from the adapter
  tunelab chat --model tunelab/tiny-chat --query "Hi"  one answer, printed, then exit
  tunelab chat recipe.yaml temperature=0.3

In the chat: /clear resets the history, /system TEXT sets the system prompt, /exit quits."""


MODEL_FLAGS = (
    KeyFlag("--model", "model_name_or_path", note="base model: folder, hub id or tunelab/tiny-chat; "
            "read from the adapter when omitted"),
    KeyFlag("--adapter", "adapter_name_or_path", repeat=True, note="adapter folder: a run "
            "directory, a checkpoint-N folder or any PEFT adapter (repeat to load several)"),
)
# The recipe keys chat and api use beyond the model and infer groups.
CHAT_KEYS = ("template", "default_system", "enable_thinking")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model / --adapter, shared with `tunelab api`."""
    add_key_flags(parser, MODEL_FLAGS)


def model_overrides(args: argparse.Namespace) -> dict:
    return flag_values(args, MODEL_FLAGS)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("chat", help="chat with a model or adapter in the terminal",
                            description=DESCRIPTION, epilog=keys_epilog(("model", "infer"), keys=CHAT_KEYS),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_recipe_arguments(parser)
    add_model_arguments(parser)
    parser.add_argument("--query", help="ask this one question, print the answer and exit")
    parser.add_argument("--system", help="system prompt (default: the recipe's default_system)")
    parser.add_argument("--model-name", help="which served model to talk to when several adapters "
                        "are loaded (default: the last adapter)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tunelab.infer import create_engine
    from tunelab.infer.terminal import TerminalChat

    cfg = load_recipe(args, model_overrides(args))
    engine = create_engine(cfg)
    try:
        chat = TerminalChat(engine, sys.stdout, model=args.model_name, system=args.system)
        if args.query is not None:
            answer = chat.ask(args.query, show_reasoning=False)
            return 0 if answer.finish_reason else 1
        chat.run(sys.stdin)
        return 0
    finally:
        engine.close()
