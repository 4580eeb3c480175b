"""``tunelab webui``: the board (Gradio) on 127.0.0.1:7860, with a password when it leaves loopback."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from tunelab.errors import ConfigError

DESCRIPTION = """Open the TuneLab Board in the browser: Train, Evaluate, Chat, Export and Runs.

It listens on 127.0.0.1 (this machine only) unless told otherwise. Listening on another address
(--host 0.0.0.0) or making a public link (--share) needs a password: --auth user:password or
--auth-file FILE (one user:password per line). Every path typed into the page must lie under the
working directory or a --root folder."""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("webui", help="open the board (web UI) to train, chat, evaluate and export",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--auth", metavar="USER:PASSWORD", help="require this login")
    auth.add_argument("--auth-file", metavar="FILE", help="require a login from FILE (user:password per line)")
    parser.add_argument("--share", action="store_true", help="also make a public gradio.live link (needs auth "
                        "and the internet)")
    parser.add_argument("--runs-dir", default="saves", help="folder whose runs the board lists and where it "
                        "starts new ones (default: saves)")
    parser.add_argument("--data-dir", default="data", help="folder holding dataset_info.json (default: data; "
                        "the packaged demo data when missing)")
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="page language at start")
    parser.add_argument("--root", action="append", default=[], metavar="DIR",
                        help="another folder that typed paths may point into (repeatable)")
    parser.add_argument("--chat-only", action="store_true", help="serve only the Chat page (with --adapter)")
    parser.add_argument("--adapter", action="append", default=[], metavar="RUN",
                        help="run or adapter folder loaded at start by --chat-only (repeatable)")
    parser.set_defaults(func=run)


def parse_auth(args: argparse.Namespace) -> list[tuple[str, str]] | None:
    """The (user, password) pairs from --auth / --auth-file, or None when neither is given."""
    if args.auth:
        return [_pair(args.auth, "--auth")]
    if args.auth_file:
        path = Path(args.auth_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}", where="--auth-file",
                              hint="give a file with one user:password per line") from None
        pairs = [_pair(line.strip(), f"{path} line {i}") for i, line in enumerate(lines, 1)
                 if line.strip() and not line.lstrip().startswith("#")]
        if not pairs:
            raise ConfigError("no user:password line found", where=f"--auth-file {path}",
                              hint="write one user:password per line")
        return pairs
    return None


def _pair(text: str, where: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ConfigError("expected user:password with both parts non-empty", where=where,
                          hint="e.g. --auth alice:s3cret")
    return user, password


def is_loopback(host: str) -> bool:
    """127.x.x.x, ::1 and localhost; every other address is reachable from other machines."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, share: bool, auth: list | None) -> None:
    """Refuse to serve beyond this machine without a login."""
    if auth:
        return
    if share:
        raise ConfigError("--share makes the board public on the internet, so it needs a login: "
                          "add --auth user:password or --auth-file FILE", where="--share")
    if not is_loopback(host):
        raise ConfigError(f"{host} lets other machines reach the board, so it needs a login: add "
                          "--auth user:password or --auth-file FILE (or keep --host 127.0.0.1)",
                          where="--host")


def run(args: argparse.Namespace) -> int:
    auth = parse_auth(args)
    check_exposure(args.host, args.share, auth)
    from tunelab.ui.context import BoardContext

    roots = [Path.cwd(), *(Path(r) for r in args.root)]
    for root in roots[1:]:
        if not root.is_dir():
            raise ConfigError(f"{root} is not a folder", where="--root", hint="give an existing folder")
    ctx = BoardContext(roots=roots, runs_dir=Path(args.runs_dir), data_dir=Path(args.data_dir), lang=args.lang)
    from tunelab.ui.app import build_board, build_chat_only, launch

    if args.chat_only:
        if not args.adapter:
            raise ConfigError("--chat-only needs the adapter to serve", where="--chat-only",
                              hint="add --adapter saves/RUN")
        blocks = build_chat_only(ctx, [str(ctx.resolve_path(a, "--adapter")) for a in args.adapter])
    else:
        blocks = build_board(ctx)
    print(f"tunelab webui: serving on http://{args.host}:{args.port}"
          + (" (login required)" if auth else ""), file=sys.stderr, flush=True)
    launch(blocks, host=args.host, port=args.port, auth=auth, share=args.share)
    return 0
