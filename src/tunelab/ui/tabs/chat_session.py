"""The chat engine behind the board's Chat tab and its ``/chat`` API: load, unload, answer.

No gradio here: the same session serves the page, the named API endpoint and the tests. The
engine is tunelab's ``ChatEngine`` built from a recipe exactly as ``tunelab chat`` builds it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from tunelab.errors import ModelError, TuneLabError

# Sampling settings a chat request may override (SamplingParams fields, recipe keys of `infer`).
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty")


def chat_recipe(model: str | None, adapters: list[str] | None, template: str | None = None,
                thinking: bool | None = None, quantization: int | None = None) -> dict[str, Any]:
    """The recipe keys ``tunelab chat --model M --adapter A`` would set for these choices."""
    raw: dict[str, Any] = {}
    if model:
        raw["model_name_or_path"] = model
    if adapters:
        raw["adapter_name_or_path"] = ",".join(adapters)
    if template:
        raw["template"] = template
    if thinking is not None:
        raw["enable_thinking"] = thinking
    if quantization:
        raw["quantization_bit"] = quantization
    return raw


def describe_error(exc: BaseException) -> str:
    """One readable line (plus hint) for any failure: ours as they print, an OOM with advice."""
    from tunelab.estimate import is_oom_error

    if isinstance(exc, TuneLabError):
        return f"{exc.kind}: {exc}"
    if is_oom_error(exc):
        return ("out of memory: the model does not fit on this device; use a smaller model, "
                "torch_dtype bfloat16 or quantization 4")
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Loaded:
    """What is loaded, for the status line."""

    model: str
    adapters: list[str]


class ChatSession:
    """One engine at a time, shared by every browser tab and API caller of a board process."""

    def __init__(self) -> None:
        self.engine: Any = None
        self.loaded: Loaded | None = None
        self._lock = threading.Lock()

    def load(self, recipe: dict[str, Any]) -> Loaded:
        """Replace the engine with one for ``recipe`` (recipe keys); raises TuneLabError."""
        from tunelab.config import load_config
        from tunelab.infer import create_engine
        from tunelab.infer.loading import base_model_name

        cfg = load_config(None, recipe)
        with self._lock:
            self._close()
            self.engine = create_engine(cfg)
            adapters = [Path(a).name for a in cfg.model.adapter_name_or_path or []]
            self.loaded = Loaded(base_model_name(cfg), adapters)
        return self.loaded

    def unload(self) -> bool:
        """Free the engine; False when nothing was loaded."""
        with self._lock:
            had = self.engine is not None
            self._close()
        return had

    def _close(self) -> None:
        if self.engine is not None:
            self.engine.close()
        self.engine, self.loaded = None, None
        import gc

        gc.collect()

    def stream(self, messages: list[dict], settings: dict[str, Any] | None = None,
               thinking: bool | None = None) -> Iterator[Any]:
        """ChatDeltas of the answer to ``messages``; ModelError when no model is loaded and
        ConfigError for a sampling setting out of range."""
        from tunelab.infer import ChatRequest

        engine = self.engine
        if engine is None:
            raise ModelError("no model is loaded", where="chat",
                             hint="choose a model (and adapters) and press Load model")
        given = {k: v for k, v in (settings or {}).items() if k in SAMPLING_KEYS and v is not None}
        for key in ("top_k", "max_new_tokens"):
            if key in given:
                given[key] = int(given[key])
        params = engine.defaults.updated(**given)
        return engine.stream(ChatRequest(messages=messages, params=params, enable_thinking=thinking))

    def reply(self, messages: list[dict], settings: dict[str, Any] | None = None,
              thinking: bool | None = None) -> tuple[str, str]:
        """(reasoning, answer) to ``messages``, complete."""
        reasoning, answer = "", ""
        for delta in self.stream(messages, settings, thinking):
            reasoning += delta.reasoning
            answer += delta.content
        return reasoning, answer


def plain_text(content: Any) -> str:
    """Message content as text: a string, or the list of typed blocks Gradio's Chatbot uses."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or content.get("content") or "")
    if isinstance(content, (list, tuple)):
        return "".join(plain_text(part) for part in content)
    return str(content)


def engine_messages(history: list[dict] | None, message: str, system: str | None) -> list[dict]:
    """The conversation as the engine takes it: system prompt, earlier turns, the new message.
    Collapsible "thinking" entries of the page (``metadata.title``) are not sent back."""
    turns = [{"role": "system", "content": system}] if system and system.strip() else []
    for turn in history or []:
        role = turn.get("role")
        if role not in ("user", "assistant") or (turn.get("metadata") or {}).get("title"):
            continue
        turns.append({"role": role, "content": plain_text(turn.get("content"))})
    return turns + [{"role": "user", "content": message}]
