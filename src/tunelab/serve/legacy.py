"""``POST /`` as in the widely copied ChatGLM-style ``api.py``, for users migrating from it.

Body ``{"prompt", "history", "max_length", "top_p", "temperature", "model"}``; answer
``{"response", "history", "status", "time"}``. ``history`` is ``[[question, answer], ...]`` or chat
messages ``[{"role": ..., "content": ...}, ...]``, and comes back in the style it was sent.
``max_length`` bounds prompt + answer tokens, as it did there; ``model`` picks a served model.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, Request

from tunelab.infer.engine import ChatEngine
from tunelab.infer.request import ChatRequest, RequestError
from tunelab.serve.convert import check_role_order
from tunelab.serve.guard import answers, client_gone
from tunelab.serve.schemas import HistoryMessage, LegacyChatRequest


def history_messages(history: list, prompt: str) -> list[dict[str, str]]:
    """History (pairs or messages) + prompt -> chat messages; RequestError naming a bad item."""
    messages = []
    for index, item in enumerate(history):
        if isinstance(item, HistoryMessage):
            messages.append({"role": item.role, "content": item.content})
            continue
        if len(item) != 2:
            raise RequestError(f"each history item must be [question, answer], got {len(item)} "
                               "strings", param=f"history.{index}")
        messages += [{"role": "user", "content": item[0]}, {"role": "assistant", "content": item[1]}]
    messages.append({"role": "user", "content": prompt})
    try:
        check_role_order(messages)
    except RequestError as exc:  # the positions are those of history + prompt, not of our list
        raise RequestError(f"history + prompt: {exc.problem}", param="history",
                           code=exc.code) from None
    return messages


def _new_history(body: LegacyChatRequest, answer: str) -> list:
    if body.history and isinstance(body.history[0], HistoryMessage):
        return [*(m.model_dump() for m in body.history), {"role": "user", "content": body.prompt},
                {"role": "assistant", "content": answer}]
    return [*body.history, [body.prompt, answer]]


def add_legacy_route(app: FastAPI, engine: ChatEngine, dependencies: list[Any]) -> None:
    @app.post("/", dependencies=dependencies)
    async def legacy_chat(body: LegacyChatRequest, request: Request) -> Any:
        do_sample = None if body.temperature is None else body.temperature > 0
        params = engine.defaults.updated(top_p=body.top_p, temperature=body.temperature,
                                         do_sample=do_sample)
        chat = ChatRequest(messages=history_messages(body.history, body.prompt), params=params,
                           model=body.model, max_total_tokens=body.max_length)
        done = await answers(request, [await engine.astart(chat)])
        if done is None:
            return client_gone()
        text = done[0].text
        return {"response": text, "history": _new_history(body, text),
                "status": 200, "time": time.strftime("%Y-%m-%d %H:%M:%S")}
