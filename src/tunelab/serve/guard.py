"""What keeps one request from hurting the server or the requests next to it.

- ``GuardedRoute`` answers any exception a route raises with an OpenAI-shaped error *response*,
  so the connection stays open for the client's next request (Starlette's last-resort handler
  re-raises, and the server then drops the keep-alive connection).
- ``BodyLimit`` refuses a request body over the limit with 413 before any of it is parsed.
- ``answers`` collects non-streaming jobs, cancels them when the client goes away, and always
  closes every job (so ``active_requests`` cannot leak when one of several fails).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tunelab.infer.engine import Job
from tunelab.infer.request import ChatResponse
from tunelab.serve.errors import error_response, exception_body


class GuardedRoute(APIRoute):
    """An APIRoute whose unexpected errors become JSON answers instead of dropped connections."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Any:
            try:
                return await handler(request)
            except (HTTPException, RequestValidationError):
                raise  # the app's own handlers answer these
            except Exception as exc:
                status, body = exception_body(exc)
                return JSONResponse(body, status_code=status)
        return guarded


class BodyLimit:
    """ASGI middleware: a body over ``max_bytes`` (declared or as it arrives) gets 413 and is not
    kept in memory; a body within the limit is buffered once and handed on unchanged."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, int(declared))
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, size, more=message.get("more_body", False))
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: dict, receive: Callable, send: Callable, size: int,
                      more: bool = True) -> None:
        response = error_response(
            f"the request body has {'at least ' if more else ''}{size} bytes; this server takes at "
            f"most {self.max_bytes} (max_request_bytes)", 413, code="request_too_large")
        await response(scope, receive, send)


def _replay(body: bytes, receive: Callable) -> Callable:
    """A ``receive`` that first hands over the buffered body, then whatever the client sends
    next (its disconnect, which long routes watch for)."""
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replayed


async def until_disconnected(request: Request) -> None:
    """Return when the client closes the connection (the body has been read by then)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def collect(job: Job) -> ChatResponse:
    """The job's complete response (every answer), from its streamed deltas."""
    response = job.response()
    async for delta in job:
        response.choices[delta.index].add(delta)
    return response


async def answers(request: Request, jobs: list[Job]) -> list[ChatResponse] | None:
    """Every job's response, or None when the client disconnected first; the first error of any
    job is raised. Every job is closed on return, so its rows stop and it leaves the count."""
    tasks = [asyncio.ensure_future(collect(job)) for job in jobs]
    gone = asyncio.ensure_future(until_disconnected(request))
    try:
        pending = set(tasks)
        while pending:
            done, _ = await asyncio.wait(pending | {gone}, return_when=asyncio.FIRST_COMPLETED)
            if gone in done:
                return None
            for task in done:
                task.result()  # raise the first failure
            pending -= done
        return [task.result() for task in tasks]
    finally:
        for task in [*tasks, gone]:
            task.cancel()
        for job in jobs:
            job.close()


def client_gone() -> Response:
    """What a route returns when its client left: nobody reads it (499, as nginx logs it)."""
    return Response(status_code=499)
