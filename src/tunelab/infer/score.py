"""Rewards from a reward model (a ``stage: rm`` run): the one place ``tunelab score`` and the
API's ``POST /v1/score`` compute them.

An input is a whole text, scored exactly as given (render it with the chat template yourself),
or a ``{prompt, response}`` pair, rendered with the run's chat template and cut into tokens
exactly as training cut its chosen/rejected answers, so a training pair scores the same here as
in training. The prompt is a user turn, or the chat messages before the response (a system
prompt, earlier turns, ending with a user turn). The reward is the score head's output at the
text's last token. The online stages' ``reward_model`` scores their completions here too.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError, ModelError
from tunelab.infer.limits import Limits
from tunelab.infer.request import RequestError

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.infer.loading import ServedModel


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def is_reward_model_dir(path: str | Path) -> bool:
    """Whether a folder holds a reward model: a ``stage: rm`` run (or one of its checkpoints),
    a sequence-classification adapter, or a full sequence-classification model."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return False
    for run in (folder, folder.parent):
        if _read_json(run / "manifest.json").get("stage") == "rm":
            return True
    if _read_json(folder / "adapter_config.json").get("task_type") == "SEQ_CLS":
        return True
    architectures = _read_json(folder / "config.json").get("architectures") or []
    return any(str(name).endswith("ForSequenceClassification") for name in architectures)


def reward_model_paths(cfg: "Config") -> list[str]:
    """The recipe's model and adapters that are reward models."""
    paths = [cfg.model.model_name_or_path, *(cfg.model.adapter_name_or_path or [])]
    return [p for p in paths if p and is_reward_model_dir(p)]


def refuse_reward_models(cfg: "Config", action: str = "chat") -> None:
    """ModelError when the recipe names a reward model where a language model is needed."""
    found = reward_model_paths(cfg)
    if found:
        # An rm run is an adapter; an exported (or full) reward model is a model folder.
        flag = "--adapter" if (Path(found[0]) / "adapter_config.json").is_file() else "--model"
        raise ModelError(f"{found[0]} is a reward model (stage rm): it scores answers, it cannot {action}",
                         where="key 'adapter_name_or_path'" if found[0] != cfg.model.model_name_or_path
                         else "key 'model_name_or_path'",
                         hint=f"score texts with `tunelab score {found[0]} --text ...`, or serve it "
                              f"with `tunelab api {flag} {found[0]}` (POST /v1/score)")


@dataclass(frozen=True)
class ScoreInput:
    """A whole ``text``, or a ``prompt`` with the assistant's ``response``. The prompt is a user
    turn, or chat messages (``{"role", "content"}``: system first if any, then user and
    assistant turns, ending with a user turn)."""

    text: str | None = None
    prompt: str | tuple[dict, ...] | None = None
    response: str | None = None


def prompt_conversation(prompt: str | tuple[dict, ...] | list[dict], where: str = "input") -> Any:
    """The Conversation a prompt opens; RequestError naming ``where.prompt.N`` for a message out
    of order (the system prompt comes first, turns alternate from the user, the user has the last)."""
    from tunelab.data.conversation import Conversation, Message

    if isinstance(prompt, str):
        return Conversation([Message("user", prompt)])
    messages = list(prompt)
    system = messages.pop(0).get("content") if messages and messages[0].get("role") == "system" else None
    offset = len(prompt) - len(messages)
    for index, message in enumerate(messages):
        expected = "user" if index % 2 == 0 else "assistant"
        if message.get("role") != expected:
            raise RequestError(f"expected a {expected} message here, got {message.get('role')!r}: a prompt "
                               "is a system message (optional), then user and assistant turns in turn",
                               param=f"{where}.prompt.{index + offset}")
    if not messages or messages[-1].get("role") != "user":
        raise RequestError("a prompt must end with a user message", param=f"{where}.prompt")
    turns = [Message(m["role"], m.get("content") or "") for m in messages]
    return Conversation(turns, system=system)


class RewardScorer:
    """One reward model in memory, scoring batches of inputs (thread-safe; one batch at a time)."""

    def __init__(self, cfg: "Config"):
        from tunelab.model.loader import pick_device

        self.cfg = cfg
        self.device = pick_device(cfg.infer.infer_device)
        self.served, self.model = _load(cfg, self.device)
        self.context_length = getattr(self.model.config, "max_position_embeddings", None)
        Limits.resolve(cfg.infer, None)
        self._lock = threading.Lock()
        self.active_requests = 0
        self.batch_stats: dict[str, int] = {}

    @property
    def limits(self) -> Limits:
        return Limits.resolve(self.cfg.infer, self.context_length)

    @property
    def model_names(self) -> list[str]:
        return [self.served.name]

    def resolve(self, name: str | None) -> "ServedModel":
        """The served reward model (``name`` None or its name); RequestError 404 otherwise."""
        if name in (None, self.served.name):
            return self.served
        raise RequestError(f"model '{name}' is not served here; served: {self.served.name}",
                           param="model", code="model_not_found", status=404)

    def encode(self, item: ScoreInput, where: str = "input") -> list[int]:
        """The token ids scored for ``item`` (RequestError naming ``where`` when it has none)."""
        tokenizer = self.served.tokenizer
        if item.text is not None:
            ids = tokenizer(item.text, add_special_tokens=False)["input_ids"]
        else:
            ids = self._pair_ids(item, where)
        if not ids:
            raise RequestError("the text is empty", param=where)
        return list(ids)

    def _pair_ids(self, item: ScoreInput, where: str) -> list[int]:
        from tunelab.data.conversation import Conversation, Message
        from tunelab.data.convert import RowError
        from tunelab.data.encode_stages import split_answer

        if item.prompt is None:
            raise RequestError("a response needs its prompt (or send the whole text instead)",
                               param=f"{where}.prompt")
        if not (item.response or "").strip():
            raise RequestError("the response is empty: there is nothing to score",
                               param=f"{where}.response")
        opened = prompt_conversation(item.prompt, where)
        conv = Conversation([*opened.messages, Message("assistant", item.response)], system=opened.system)
        try:
            prompt, answer = split_answer(conv, self.served.tokenizer,
                                          enable_thinking=self.cfg.data.enable_thinking,
                                          default_system=self.cfg.data.default_system)
        except RowError as exc:
            raise RequestError(exc.reason, param=where) from None
        return prompt + answer

    def score(self, items: list[ScoreInput], model: str | None = None,
              labels: list[str] | None = None) -> list[tuple[float, int]]:
        """``(reward, tokens)`` of every item, in order. RequestError for a bad or oversized
        request (no item, more than ``max_choices`` items, a text over ``max_prompt_tokens``),
        naming the item by its ``labels`` entry (default ``input.N``)."""
        self.resolve(model)
        limits = self.limits
        if not items:
            raise RequestError("input must hold at least one text", param="input")
        if len(items) > limits.choices:
            raise RequestError(f"{len(items)} inputs; this server scores at most {limits.choices} "
                               "per request (max_choices)", param="input", code="limit_exceeded")
        with self._lock:  # fast tokenizers refuse concurrent use, and one batch runs at a time
            self.active_requests += 1
            try:
                labels = labels or [f"input.{i}" for i in range(len(items))]
                encoded = [self.encode(item, label) for item, label in zip(items, labels)]
                _check_lengths(encoded, labels, limits.prompt_tokens)
                rewards = self._rewards(encoded)
            finally:
                self.active_requests -= 1
        return [(reward, len(ids)) for reward, ids in zip(rewards, encoded)]

    def _rewards(self, encoded: list[list[int]]) -> list[float]:
        import torch

        pad = self.served.tokenizer.pad_token_id
        size = max(1, self.cfg.infer.max_batch_size)
        rewards: list[float] = []
        for start in range(0, len(encoded), size):
            chunk = encoded[start:start + size]
            width = max(len(ids) for ids in chunk)
            # Right padding, as the training collator pads; the head reads the last real token.
            ids = torch.tensor([row + [pad] * (width - len(row)) for row in chunk])
            mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in chunk])
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(self.device),
                                    attention_mask=mask.to(self.device)).logits
            rewards += logits[:, 0].float().tolist()
        return rewards

    def close(self) -> None:
        """Nothing runs in the background; kept so callers treat it as a chat engine."""


def _check_lengths(encoded: list[list[int]], labels: list[str], most: int | None) -> None:
    for ids, label in zip(encoded, labels):
        if most is not None and len(ids) > most:
            raise RequestError(f"the text has {len(ids)} tokens; at most {most} can be scored "
                               "(max_prompt_tokens, or the model's context)", param=label,
                               code="context_length_exceeded")


def _load(cfg: "Config", device: str) -> tuple["ServedModel", Any]:
    """The served reward model (name, tokenizer with its template) and the model itself."""
    from tunelab.infer.loading import attach_adapters, base_model_name, served_models
    from tunelab.model.loader import load_model, resolve_model_path

    found = reward_model_paths(cfg)
    if not found:
        named = cfg.model.adapter_name_or_path or [cfg.model.model_name_or_path]
        raise ModelError(f"{named[-1]} is not a reward model", where="key 'adapter_name_or_path'",
                         hint="train one with stage: rm and pass its run directory")
    adapters = cfg.model.adapter_name_or_path or []
    if len(adapters) > 1:
        raise ConfigError(f"{len(adapters)} adapters given; a scoring server serves one reward model",
                          where="key 'adapter_name_or_path'", hint="start one server per reward model")
    base = base_model_name(cfg)
    served = served_models(cfg, resolve_model_path(base))
    model_args = dataclasses.replace(cfg.model, model_name_or_path=base)
    model = attach_adapters(load_model(model_args, device=device, head="reward"), served)
    if adapters:
        model.set_adapter(served[-1].adapter)
    model.config.pad_token_id = served[-1].tokenizer.pad_token_id
    return served[-1], model.eval()
