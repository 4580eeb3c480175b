"""``tunelab tiny``: build the offline tiny models (``build``) or locate a cached built-in (``path``)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the ``tiny`` command and its ``build`` / ``path`` sub-commands."""
    parser = subparsers.add_parser(
        "tiny", help="build tiny offline models for tests and demos",
        description="Build tiny random-init Llama models with a tokenizer trained on the demo data. "
                    "Nothing is downloaded.")
    actions = parser.add_subparsers(dest="tiny_action", metavar="<action>")

    build = actions.add_parser("build", help="build a tiny model into a folder")
    build.add_argument("--variant", choices=["chat", "think"], default="chat",
                       help="chat template: plain ChatML, or ChatML with <think> reasoning (default: chat)")
    build.add_argument("--size", choices=["tiny", "bench"], default="tiny",
                       help="tiny (~0.2M params) or bench (~32M params) (default: tiny)")
    build.add_argument("--seed", type=int, default=0, help="random-init seed (default: 0)")
    build.add_argument("--out", required=True, help="output folder (created if missing)")

    path = actions.add_parser("path", help="print the cached folder of a built-in model, building it if needed")
    path.add_argument("name", help="tunelab/tiny-chat, tunelab/tiny-think or tunelab/bench-chat")

    parser.set_defaults(func=run, tiny_parser=parser)


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen action; prints the resulting folder on stdout."""
    from tunelab.testing import build_tiny_model, builtin_model_path

    if args.tiny_action == "build":
        print(build_tiny_model(args.out, variant=args.variant, size=args.size, seed=args.seed))
        return 0
    if args.tiny_action == "path":
        print(builtin_model_path(args.name))
        return 0
    args.tiny_parser.print_help()
    return 2
