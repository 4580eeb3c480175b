"""``tunelab`` command line: one sub-command per module in this package.

Each command module exposes ``register(subparsers)`` which adds its parser and sets
``func(args) -> int``. User errors (:class:`tunelab.errors.TuneLabError`) are printed without a
traceback unless ``--debug`` is given.

Exit codes, the same for every command (scripts can tell them apart):

- ``0`` (EXIT_OK): done.
- ``1`` (EXIT_ROWS_SKIPPED): ``tunelab data validate`` found rows it would skip; every dataset
  still has usable rows and training would run without them.
- ``2`` (EXIT_USER_ERROR): a TuneLab error was reported (bad recipe, data file, model folder,
  command line, or a run that stopped with an explanation such as out-of-memory). Fix what the
  message names and run again.
- ``3`` (EXIT_INTERNAL): an unexpected exception (a bug): its traceback is printed.
- ``130`` (EXIT_INTERRUPTED): Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from tunelab.cli.common import absorb_late_pairs
from tunelab.errors import TuneLabError
from tunelab.quiet import silence_library_noise

# Module names under tunelab.cli, in the order `tunelab --help` lists them.
COMMANDS = ["train", "data", "env", "tiny", "estimate", "evaluate", "export", "chat", "score", "api", "webui",
            "runs"]

EXIT_OK = 0
EXIT_ROWS_SKIPPED = 1
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tunelab",
        description="Fine-tune open LLMs end to end: register data, estimate, train, list runs, "
                    "evaluate, chat, export, serve; or all of it in the web board (webui).",
        epilog="Run `tunelab <command> --help` for a command's options.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        importlib.import_module(f"tunelab.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    silence_library_noise()
    debug = "--debug" in argv or os.environ.get("TUNELAB_DEBUG") == "1"
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    absorb_late_pairs(parser, args, extras)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args) or EXIT_OK)
    except TuneLabError as exc:
        if debug:
            raise
        print(f"tunelab {exc.kind}: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # a bug: keep the traceback, but with a code no user error uses
        if debug:
            raise
        traceback.print_exc()
        print("tunelab: internal error (a bug; please report it with the traceback above)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
