"""``tunelab api [recipe.yaml] [key=value ...] [--host 127.0.0.1] [--port 8000] [--api-key KEY]``."""

from __future__ import annotations

import argparse
import os

from tunelab.cli.chat import CHAT_KEYS, add_model_arguments, model_overrides
from tunelab.cli.common import add_recipe_arguments, keys_epilog, load_recipe
from tunelab.errors import ConfigError

DESCRIPTION = """Serve a model and its adapters behind an OpenAI-compatible API.

Endpoints: GET /v1/models, POST /v1/chat/completions, POST /v1/completions, GET /health, and
POST / (the ChatGLM-style {prompt, history} endpoint). A reward model (an adapter or model
trained with stage: rm) is served for scoring instead: POST /v1/score with {"input": [texts or
{"prompt", "response"} pairs]} answers one reward per input, as `tunelab score` computes it.
Each adapter is served under its folder name next to the base; pick one with the request's
"model" field. Concurrent requests decode together: with batching=continuous (the default) a new
request joins the running batch at the next decoding step (max_batch_size answers at most; when
it is full, an answer that ran batch_slice_tokens tokens gives its place up); batching=dynamic
shares one generate call among requests that arrive within batch_wait_ms.

Listens on 127.0.0.1 unless --host says otherwise. --api-key (or TUNELAB_API_KEY) requires
"Authorization: Bearer KEY" on every route but /health, /docs and /openapi.json included.
Without a key, another --host (or an empty --api-key) refuses to start unless
--allow-unauthenticated says that serving everyone who can reach the port is intended.

Limits (400, or 413 for the body, beyond them; 0 derives them from the model's context):
--max-prompt-tokens, --max-answer-tokens (largest max_tokens), --max-choices (n x prompts),
--max-request-bytes; the recipe keys of the same names set them too."""

LOOPBACK = ("127.0.0.1", "localhost", "::1")
LIMIT_FLAGS = {"max_prompt_tokens": "longest prompt, in tokens (default: the model's context)",
               "max_answer_tokens": "largest max_tokens a request may ask for (default: the "
                                    "model's context)",
               "max_choices": "most answers per request, n x prompts (default: 16)",
               "max_request_bytes": "largest request body in bytes (default: 16 per context "
                                    "token, at least 1 MiB)"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("api", help="serve a model behind an OpenAI-compatible API",
                            description=DESCRIPTION, epilog=keys_epilog(("model", "infer"), keys=CHAT_KEYS),
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_recipe_arguments(parser)
    add_model_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument("--api-key", default=os.environ.get("TUNELAB_API_KEY"),
                        help="require this Bearer key (default: $TUNELAB_API_KEY; unset: no auth, "
                             "allowed on loopback only)")
    parser.add_argument("--allow-unauthenticated", action="store_true",
                        help="serve without a key on a non-loopback --host or with an empty "
                             "--api-key (anyone who can reach the port can use the model)")
    parser.add_argument("--no-docs", action="store_true", help="leave out /docs and /openapi.json")
    parser.add_argument("--cors-origins", default="",
                        help="comma-separated browser origins allowed to call the API, or '*'")
    for key, text in LIMIT_FLAGS.items():
        parser.add_argument("--" + key.replace("_", "-"), type=int, dest=key, help=f"{text}; {key}")
    parser.set_defaults(func=run)


def check_exposure(host: str, api_key: str | None, allow_unauthenticated: bool) -> None:
    """ConfigError, before anything loads, for a server that would answer anyone by accident."""
    if api_key or allow_unauthenticated:
        return
    if api_key == "":
        raise ConfigError("the API key is empty, so every request would be served",
                          where="--api-key", hint="give a key, or add --allow-unauthenticated if "
                          "serving without one is intended")
    if host not in LOOPBACK:
        raise ConfigError(f"listening on {host} without an API key would serve anyone who can "
                          "reach this port", where="--host",
                          hint="set --api-key KEY (or TUNELAB_API_KEY), or add "
                               "--allow-unauthenticated if that is intended")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from tunelab.infer.score import RewardScorer
    from tunelab.serve import create_app

    check_exposure(args.host, args.api_key, args.allow_unauthenticated)
    limits = {key: getattr(args, key) for key in LIMIT_FLAGS}
    cfg = load_recipe(args, {**model_overrides(args), **limits})
    engine = _engine(cfg)
    origins = [o.strip() for o in args.cors_origins.split(",") if o.strip()]
    app = create_app(engine, api_key=args.api_key or None, cors_origins=origins, docs=not args.no_docs)
    doing = "scoring with the reward model" if isinstance(engine, RewardScorer) else "serving"
    print(f"{doing} {', '.join(engine.model_names)} at http://{args.host}:{args.port}/v1", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        engine.close()
    return 0


def _engine(cfg):
    """A RewardScorer when the recipe names a reward model (stage rm), else a chat engine."""
    from tunelab.infer import create_engine
    from tunelab.infer.score import RewardScorer, reward_model_paths

    return RewardScorer(cfg) if reward_model_paths(cfg) else create_engine(cfg)
