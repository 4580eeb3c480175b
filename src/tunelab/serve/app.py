"""The OpenAI-compatible FastAPI app over a ChatEngine, or over a RewardScorer (a reward model:
``POST /v1/score`` in place of the generation routes).

Routes hold no model logic: they validate, translate (``convert``) and stream. Requests run
concurrently; the engine batches them. A client that disconnects (streaming or not) closes its
Jobs, which cancels their rows inside the running batch. ``guard`` keeps bodies within the limit
and turns every failure into an OpenAI-shaped answer on a connection that stays open.
"""

from __future__ import annotations

import hmac
import json
import time
from dataclasses import asdict
from typing import Any, AsyncIterator

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from tunelab.infer.engine import ChatEngine, Job
from tunelab.infer.request import RequestError
from tunelab.infer.score import RewardScorer
from tunelab.serve import convert
from tunelab.serve.errors import exception_body, install_error_handlers
from tunelab.serve.guard import BodyLimit, GuardedRoute, answers, client_gone
from tunelab.serve.legacy import add_legacy_route
from tunelab.serve.schemas import ChatCompletionRequest, CompletionRequest
from tunelab.serve.score import add_score_refusal, add_score_route


def create_app(engine: ChatEngine | RewardScorer, *, api_key: str | None = None,
               cors_origins: list[str] | None = None, docs: bool = True) -> FastAPI:
    """The API app. ``api_key`` enables ``Authorization: Bearer`` on every route but /health
    (/docs and /openapi.json included); ``cors_origins`` lists browser origins allowed to call it
    (none by default); ``docs=False`` leaves out /docs and /openapi.json. Over a RewardScorer
    the app scores (``POST /v1/score``) and answers the generation routes with a 400."""
    app = FastAPI(title="TuneLab API", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.router.route_class = GuardedRoute
    install_error_handlers(app)
    limits = engine.limits
    app.add_middleware(BodyLimit, max_bytes=limits.request_bytes)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_methods=["*"],
                           allow_headers=["*"])
    auth = [Depends(_bearer_check(api_key))]
    if docs:
        _add_docs(app, auth)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": engine.model_names, "active_requests": engine.active_requests,
                "batching": engine.batch_stats, "limits": asdict(limits)}

    @app.get("/v1/models", dependencies=auth)
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_card(engine, name) for name in engine.model_names]}

    @app.get("/v1/models/{model_id:path}", dependencies=auth)
    async def get_model(model_id: str) -> dict[str, Any]:
        engine.resolve(model_id)
        return _model_card(engine, model_id)

    if isinstance(engine, RewardScorer):
        add_score_route(app, engine, auth)
    else:
        _add_generation_routes(app, engine, auth)
    return app


def _add_generation_routes(app: FastAPI, engine: ChatEngine, auth: list[Any]) -> None:
    @app.post("/v1/chat/completions", dependencies=auth)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        job = await engine.astart(convert.chat_request(engine, body))
        completion_id = convert.new_id("chatcmpl")
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            return _sse(_chat_events(job, completion_id, usage))
        done = await answers(request, [job])
        return client_gone() if done is None else convert.chat_completion(done[0], completion_id)

    @app.post("/v1/completions", dependencies=auth)
    async def completions(body: CompletionRequest, request: Request) -> Any:
        prompts = _prompts(body, engine.limits.choices)
        jobs = await _start_all(engine, [convert.completion_request(engine, body, p) for p in prompts])
        completion_id = convert.new_id("cmpl")
        if body.stream:
            return _sse(_text_events(jobs[0], completion_id, body.prompt if body.echo else ""))
        done = await answers(request, jobs)
        if done is None:
            return client_gone()
        echo = prompts if body.echo else [""] * len(prompts)
        return convert.text_completion(done, completion_id, echo)

    add_legacy_route(app, engine, auth)
    add_score_refusal(app, auth)


def _add_docs(app: FastAPI, auth: list[Any]) -> None:
    """/openapi.json and /docs, behind the same key as the API (a script or a fuzzer reads the
    schema with its Authorization header; a browser shows /docs when no key is set)."""
    @app.get("/openapi.json", dependencies=auth, include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", dependencies=auth, include_in_schema=False)
    async def swagger() -> Any:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")


def _prompts(body: CompletionRequest, most: int) -> list[str]:
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    if not prompts:
        raise RequestError("prompt must not be empty", param="prompt")
    if body.stream and len(prompts) > 1:
        raise RequestError("streaming takes a single prompt", param="prompt")
    if len(prompts) * body.n > most:
        raise RequestError(f"{len(prompts)} prompts x n={body.n} asks for {len(prompts) * body.n} "
                           f"answers; this server gives at most {most} per request (max_choices)",
                           param="prompt", code="limit_exceeded")
    return prompts


async def _start_all(engine: ChatEngine, requests: list[Any]) -> list[Job]:
    """Start every request, or none: a bad one closes those already started."""
    jobs: list[Job] = []
    try:
        for request in requests:
            jobs.append(await engine.astart(request))
    except BaseException:
        for job in jobs:
            job.close()
        raise
    return jobs


def _bearer_check(api_key: str | None) -> Any:
    expected = api_key.encode("utf-8") if api_key else b""

    async def check(request: Request) -> None:
        if not api_key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        # Headers arrive as latin-1 text; compare the bytes sent, whatever characters they hold.
        sent = token.strip().encode("latin-1", "replace")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent, expected):
            raise HTTPException(401, "missing or wrong API key: send Authorization: Bearer <key>",
                                headers={"WWW-Authenticate": "Bearer"})
    return check


def _model_card(engine: ChatEngine, name: str) -> dict[str, Any]:
    served = engine.resolve(name)
    card = {"id": name, "object": "model", "created": int(time.time()), "owned_by": "tunelab"}
    if served.adapter and name != engine.model_names[0]:
        card["parent"] = engine.model_names[0]
    return card


def _sse(events: AsyncIterator[dict]) -> StreamingResponse:
    async def lines() -> AsyncIterator[str]:
        async for event in events:
            yield f"data: {json.dumps(event, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"
    return StreamingResponse(lines(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _chat_events(job: Job, completion_id: str, include_usage: bool) -> AsyncIterator[dict]:
    completion_tokens = 0
    try:
        for index in range(len(job.prepared.params)):
            yield convert.chat_chunk(completion_id, job.model, None, index=index, role=True)
        async for delta in job:
            completion_tokens += delta.completion_tokens
            if delta.content or delta.reasoning or delta.tool_calls or delta.finish_reason:
                yield convert.chat_chunk(completion_id, job.model, delta)
        if include_usage:
            yield {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()),
                   "model": job.model, "choices": [],
                   "usage": convert.usage(job.prompt_tokens, completion_tokens)}
    except Exception as exc:  # headers are sent: report in-band, as OpenAI does
        yield exception_body(exc)[1]
    finally:
        job.close()


async def _text_events(job: Job, completion_id: str, echo: str) -> AsyncIterator[dict]:
    try:
        if echo:
            yield convert.text_chunk(completion_id, job.model, 0, echo, None)
        async for delta in job:
            if delta.content or delta.finish_reason:
                yield convert.text_chunk(completion_id, job.model, delta.index, delta.content,
                                         delta.finish_reason)
    except Exception as exc:
        yield exception_body(exc)[1]
    finally:
        job.close()
