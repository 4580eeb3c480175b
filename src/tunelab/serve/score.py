"""``POST /v1/score`` (a reward model's rewards for texts), and the answers each kind of server
gives to the other kind's routes: a chat server has no reward model, a scoring server cannot chat.

The scoring itself is ``infer.score.RewardScorer``'s, the same as ``tunelab score``'s.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from tunelab.infer.request import RequestError
from tunelab.infer.score import RewardScorer, ScoreInput
from tunelab.serve.schemas import ScorePair, ScoreRequest

CHAT_ROUTES = ("/v1/chat/completions", "/v1/completions", "/")


def score_inputs(body: ScoreRequest) -> list[ScoreInput]:
    items = [body.input] if isinstance(body.input, str) else body.input
    return [ScoreInput(prompt=_prompt(item.prompt), response=item.response) if isinstance(item, ScorePair)
            else ScoreInput(text=item) for item in items]


def _prompt(prompt: Any) -> Any:
    """A user turn as it came, or the messages as plain dicts."""
    return prompt if isinstance(prompt, str) else tuple(m.model_dump() for m in prompt)


def add_score_route(app: FastAPI, scorer: RewardScorer, dependencies: list[Any]) -> None:
    """``POST /v1/score`` on a scoring server, and a 400 naming /v1/score on the chat routes."""
    @app.post("/v1/score", dependencies=dependencies)
    async def score(body: ScoreRequest) -> dict[str, Any]:
        results = await asyncio.to_thread(scorer.score, score_inputs(body), body.model)
        tokens = sum(count for _, count in results)
        return {"object": "list", "model": scorer.served.name,
                "data": [{"object": "score", "index": i, "score": value}
                         for i, (value, _) in enumerate(results)],
                "scores": [value for value, _ in results],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def cannot_chat() -> None:
        raise RequestError(f"this server serves the reward model '{scorer.served.name}', which "
                           "scores texts and cannot generate", param="model", code="reward_model",
                           hint="POST /v1/score with {\"input\": [...]}; chat with a server started "
                                "on a chat model or sft adapter")

    for path in CHAT_ROUTES:
        app.add_api_route(path, cannot_chat, methods=["POST"], dependencies=dependencies,
                          include_in_schema=False)


def add_score_refusal(app: FastAPI, dependencies: list[Any]) -> None:
    """``POST /v1/score`` on a chat server: a 400 saying how to serve a reward model."""
    async def no_reward_model() -> None:
        raise RequestError("this server serves a chat model, not a reward model", param="model",
                           code="no_reward_model",
                           hint="start `tunelab api --adapter RM_RUN` with a run trained with "
                                "stage: rm to score texts")

    app.add_api_route("/v1/score", no_reward_model, methods=["POST"], dependencies=dependencies,
                      include_in_schema=False)
