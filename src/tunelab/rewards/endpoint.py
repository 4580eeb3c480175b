"""``reward_model_type: api``: a reward model behind an HTTP endpoint shaped like TuneLab's
``POST /v1/score`` (``tunelab api --adapter RM_RUN``).

Each request sends ``{"input": [{"prompt": ..., "response": ...}, ...]}`` and reads the scores,
in order, from the answer's ``scores`` list (or its ``data[].score`` entries). A prompt that is
one user turn is sent as its text; one with a system prompt or earlier turns as its chat
messages, which the server renders with the reward model's own template. With
``TUNELAB_REWARD_API_KEY`` set, requests carry ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tunelab.errors import ModelError

API_KEY_ENV = "TUNELAB_REWARD_API_KEY"
BATCH = 16  # inputs per request: a TuneLab scoring server's default max_choices
EXAMPLE_URL = "http://127.0.0.1:8000/v1/score"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a scoring endpoint's address (None when it can)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http:// or https:// URL with a host"
    try:
        parts.port
    except ValueError:
        return f"{url!r} has a bad port"
    return None


class ScoreEndpoint:
    """The client of one scoring endpoint; ModelError naming the URL (and the HTTP status)
    when it cannot be reached or answers with anything but one score per input."""

    def __init__(self, url: str, timeout: float = 300.0):
        self.url, self.timeout = url, timeout

    def score(self, items: list[dict[str, Any]]) -> list[float]:
        """The score of every ``{"prompt", "response"}`` item, in order."""
        scores: list[float] = []
        for start in range(0, len(items), BATCH):
            scores += self._post(items[start:start + BATCH])
        return scores

    def _post(self, items: list[dict[str, Any]]) -> list[float]:
        headers = {"Content-Type": "application/json"}
        if os.environ.get(API_KEY_ENV):
            headers["Authorization"] = f"Bearer {os.environ[API_KEY_ENV]}"
        body = json.dumps({"input": items}, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                text = reply.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            raise self._error(f"answered HTTP {exc.code}: {_error_text(exc)}",
                              "check the URL (a TuneLab server scores at /v1/score) and that it "
                              f"serves a reward model; a key goes in ${API_KEY_ENV}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise self._error(f"cannot be reached ({reason})",
                              f"start it first, e.g. `tunelab api --adapter RM_RUN --port 8000` "
                              f"for {EXAMPLE_URL}") from None
        return self._scores(text, len(items))

    def _scores(self, text: str, expected: int) -> list[float]:
        try:
            answer = json.loads(text)
        except json.JSONDecodeError:
            raise self._error(f"answered with something that is not JSON: {text[:200]!r}") from None
        scores = answer.get("scores") if isinstance(answer, dict) else None
        if scores is None and isinstance(answer, dict) and isinstance(answer.get("data"), list):
            scores = [item.get("score") if isinstance(item, dict) else None for item in answer["data"]]
        if not isinstance(scores, list):
            raise self._error(f"answered without a 'scores' list: {text[:200]!r}")
        if len(scores) != expected:
            raise self._error(f"answered {len(scores)} scores for {expected} inputs")
        for index, value in enumerate(scores):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise self._error(f"answered {value!r} as score {index}, not a finite number")
        return [float(value) for value in scores]

    def _error(self, problem: str, hint: str | None = None) -> ModelError:
        return ModelError(f"the reward model endpoint {self.url} {problem}", where="key 'reward_model'",
                          hint=hint or "it must answer like TuneLab's POST /v1/score: "
                                       "{\"scores\": [one number per input]}")


def _error_text(exc: urllib.error.HTTPError) -> str:
    """The server's own message (OpenAI-style ``{"error": {"message"}}``), else its body."""
    raw = exc.read().decode("utf-8", "replace")
    try:
        error = json.loads(raw).get("error")
    except (json.JSONDecodeError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:300]
    return raw[:300] or str(exc.reason)
