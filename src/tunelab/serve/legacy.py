"""``POST /`` as in the widely copied ChatGLM-style ``api.py``, for users migrating from it.

Body ``{"prompt", "history": [[question, answer], ...], "max_length", "top_p", "temperature"}``;
answer ``{"response", "history", "status", "time"}``. ``max_length`` bounds prompt + answer
tokens, as it did there.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI

from tunelab.infer.engine import ChatEngine
from tunelab.infer.request import ChatRequest, RequestError
from tunelab.serve.schemas import LegacyChatRequest


def history_messages(history: list[list[str]], prompt: str) -> list[dict[str, str]]:
    """``[[q, a], ...]`` + prompt -> chat messages; RequestError naming a malformed pair."""
    messages = []
    for index, pair in enumerate(history):
        if len(pair) != 2:
            raise RequestError(f"each history item must be [question, answer], got {len(pair)} "
                               "strings", param=f"history.{index}")
        messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    return messages + [{"role": "user", "content": prompt}]


def add_legacy_route(app: FastAPI, engine: ChatEngine, dependencies: list[Any]) -> None:
    @app.post("/", dependencies=dependencies)
    async def legacy_chat(body: LegacyChatRequest) -> dict[str, Any]:
        do_sample = None if body.temperature is None else body.temperature > 0
        params = engine.defaults.updated(top_p=body.top_p, temperature=body.temperature,
                                         do_sample=do_sample)
        request = ChatRequest(messages=history_messages(body.history, body.prompt), params=params,
                              max_total_tokens=body.max_length)
        answer = (await engine.agenerate(request)).text
        return {"response": answer, "history": [*body.history, [body.prompt, answer]],
                "status": 200, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
