"""``tunelab api [recipe.yaml] [key=value ...] [--host 127.0.0.1] [--port 8000] [--api-key KEY]``."""

from __future__ import annotations

import argparse
import os
import sys

from tunelab.cli.chat import CHAT_KEYS, add_model_arguments, model_overrides
from tunelab.cli.common import add_recipe_arguments, keys_epilog, load_recipe

DESCRIPTION = """Serve a model and its adapters behind an OpenAI-compatible API.

Endpoints: GET /v1/models, POST /v1/chat/completions, POST /v1/completions, GET /health, and
POST / (the ChatGLM-style {prompt, history} endpoint). Each adapter is served under its folder
name next to the base; pick one with the request's "model" field. Concurrent requests are
batched together (max_batch_size, batch_wait_ms).

Listens on 127.0.0.1 unless --host says otherwise. --api-key (or TUNELAB_API_KEY) requires
"Authorization: Bearer KEY" on every route but /health."""

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("api", help="serve a model behind an OpenAI-compatible API",
                            description=DESCRIPTION, epilog=keys_epilog(("model", "infer"), keys=CHAT_KEYS),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_recipe_arguments(parser)
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument("--api-key", default=os.environ.get("TUNELAB_API_KEY"),
                        help="require this Bearer key (default: $TUNELAB_API_KEY; unset: no auth)")
    parser.add_argument("--cors-origins", default="",
                        help="comma-separated browser origins allowed to call the API, or '*'")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from tunelab.infer import create_engine
    from tunelab.serve import create_app

    cfg = load_recipe(args, model_overrides(args))
    if args.host not in LOOPBACK and not args.api_key:
        print(f"warning: listening on {args.host} without an API key; anyone who can reach this "
              "port can use the model (set --api-key or TUNELAB_API_KEY)", file=sys.stderr)
    engine = create_engine(cfg)
    origins = [o.strip() for o in args.cors_origins.split(",") if o.strip()]
    app = create_app(engine, api_key=args.api_key, cors_origins=origins)
    print(f"serving {', '.join(engine.model_names)} at http://{args.host}:{args.port}/v1", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        engine.close()
    return 0
