"""``tunelab`` command line: one sub-command per module in this package.

Each command module exposes ``register(subparsers)`` which adds its parser and sets
``func(args) -> int``. User errors (:class:`tunelab.errors.TuneLabError`) are printed without a
traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from tunelab.errors import TuneLabError

# Module names under tunelab.cli, in the order `tunelab --help` lists them.
COMMANDS = ["train", "data", "env", "tiny", "estimate", "export", "chat", "api", "webui", "runs"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunelab",
        description="Fine-tune open LLMs end to end: register data, estimate, train, chat, export, serve.",
        epilog="Run `tunelab <command> --help` for a command's options.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        importlib.import_module(f"tunelab.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("TUNELAB_DEBUG") == "1"
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TuneLabError as exc:
        if debug:
            raise
        print(f"tunelab {exc.kind}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
