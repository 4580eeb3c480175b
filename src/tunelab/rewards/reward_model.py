"""``reward_model`` for the online stages (grpo, rloo): a reward model scores every completion,
one more reward function beside ``reward_funcs``, logged by TRL as ``rewards/reward_model/mean``.

The completions are scored by ``infer.score.RewardScorer`` (what ``tunelab score`` and
``POST /v1/score`` use): the prompt's messages plus the completion are rendered with the reward
model's own chat template (the one its rm run trained with, with that run's enable_thinking and
default_system), so a completion scores as the same answer scored in rm training. TRL's own
reward-model path would re-render the text with the policy's tokenizer instead.

``reward_model_type``: ``lora`` loads the rm adapter on the policy's base model, ``full`` a
sequence-classification model (plus at most one rm adapter from ``reward_model_adapters``), both
as a separate frozen scorer; ``api`` posts the pairs to an endpoint (``rewards.endpoint``). An
empty completion has no answer to score: it gets None, which TRL leaves out of the mean.
Imports neither torch nor TRL at module level (config checks use it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tunelab.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from tunelab.config.schema import Config

NAME = "reward_model"  # the name TRL logs the scores under: rewards/reward_model/mean
# The keys of the rm run that decide how its texts were rendered.
RENDER_KEYS = ("template", "enable_thinking", "default_system", "placeholders")
RM_HINT = "train one with stage: rm and give its run directory"


def _problem(key: str, value: Any, why: str, hint: str | None = None) -> ConfigError:
    return ConfigError(why, where=f"key '{key}'", key=key, value=value, hint=hint)


def reward_model_problems(cfg: "Config") -> list[ConfigError]:
    """What is wrong with the recipe's reward model keys, checked before anything loads."""
    rl = cfg.rl
    if not rl.reward_model:
        return [_problem(key, getattr(rl, key), f"{key} is set but reward_model is not",
                         "set reward_model or remove the key")
                for key in ("reward_model_adapters", "reward_model_quantization_bit")
                if getattr(rl, key)]
    if rl.reward_model_type == "api":
        return _api_problems(rl)
    adapters = rl.reward_model_adapters or []
    kind = rl.reward_model_type
    found = _folder_problems(rl.reward_model, kind, adapters if kind == "full" else [])
    if kind == "lora" and adapters:
        found.append(_problem("reward_model_adapters", rl.reward_model_adapters,
                              "applies to reward_model_type full only: with lora, reward_model "
                              "is itself the adapter", "remove reward_model_adapters"))
    elif adapters:
        found += _adapter_problems(adapters)
    return found


def _api_problems(rl: Any) -> list[ConfigError]:
    from tunelab.rewards.endpoint import EXAMPLE_URL, url_problem

    why = url_problem(rl.reward_model)
    hint = (f"e.g. reward_model: {EXAMPLE_URL} (`tunelab api --adapter RM_RUN --port 8000`)"
            if not Path(rl.reward_model).expanduser().is_dir() else
            "it is a folder: set reward_model_type: lora (an rm adapter) or full")
    found = [_problem("reward_model", rl.reward_model, f"reward_model_type api needs a URL: {why}",
                      hint)] if why else []
    for key in ("reward_model_adapters", "reward_model_quantization_bit"):
        if getattr(rl, key):
            found.append(_problem(key, getattr(rl, key), "has no effect with reward_model_type api: "
                                  "the endpoint's server loads its own model", f"remove {key}"))
    return found


def _folder_problems(path: str, kind: str, adapters: list[str]) -> list[ConfigError]:
    from tunelab.infer.score import is_reward_model_dir

    folder = Path(path).expanduser()
    if path.startswith(("http://", "https://")):
        return [_problem("reward_model", path, f"{path} is a URL, not a folder",
                         "set reward_model_type: api to score with an HTTP endpoint")]
    if not folder.is_dir():
        return [_problem("reward_model", path, f"folder {path} not found", RM_HINT)]
    adapter, weights = (folder / "adapter_config.json").is_file(), (folder / "config.json").is_file()
    if kind == "lora" and not adapter:
        hint = "it holds a whole model: set reward_model_type: full" if weights else RM_HINT
        return [_problem("reward_model", path, f"{path} has no adapter_config.json: "
                         "reward_model_type lora needs an rm adapter folder", hint)]
    if kind == "full" and adapter and not weights:
        return [_problem("reward_model", path, f"{path} holds an adapter, not a whole model",
                         "set reward_model_type: lora to load it on the policy's base model")]
    if not adapters and not is_reward_model_dir(folder):
        return [_problem("reward_model", path, f"{path} is not a reward model: no stage rm run, "
                         "no SEQ_CLS adapter, no ...ForSequenceClassification config.json",
                         f"{RM_HINT} (a causal LM would get an untrained score head)")]
    return []


def _adapter_problems(adapters: list[str]) -> list[ConfigError]:
    from tunelab.infer.score import is_reward_model_dir

    if len(adapters) > 1:
        return [_problem("reward_model_adapters", adapters, f"{len(adapters)} adapters given; a "
                         "reward model takes one", "keep the rm adapter trained on reward_model")]
    return [_problem("reward_model_adapters", path, f"{path} is not a reward model adapter (a stage rm "
                     "run or an adapter with task_type SEQ_CLS)", RM_HINT)
            for path in adapters if not is_reward_model_dir(path)]


class RewardModelReward:
    """The reward function TRL calls: ``score(pairs)`` gives the reward of each
    ``(prompt messages, answer)`` pair; empty answers get None (not scored)."""

    __name__ = NAME

    def __init__(self, score: Callable[[list[tuple[list[dict], str]]], list[float]], describe: str):
        self._score, self.describe = score, describe

    def __call__(self, prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
        from tunelab.rewards.builtin import completion_text

        pairs = [(_messages(prompt), completion_text(completion))
                 for prompt, completion in zip(prompts, completions, strict=True)]
        scored = [i for i, (_, answer) in enumerate(pairs) if answer.strip()]
        rewards: list[float | None] = [None] * len(pairs)
        for index, value in zip(scored, self._score([pairs[i] for i in scored]) if scored else []):
            rewards[index] = value
        return rewards


def _messages(prompt: Any) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [{"role": m["role"], "content": m.get("content") or ""} for m in prompt]


def load_reward_model(cfg: "Config", device: str) -> RewardModelReward:
    """The recipe's reward model as a reward function, loaded (or, for api, reached) now."""
    if cfg.rl.reward_model_type == "api":
        return _endpoint_reward(cfg.rl.reward_model)
    return _local_reward(cfg, device)


def _endpoint_reward(url: str) -> RewardModelReward:
    from tunelab.rewards.endpoint import ScoreEndpoint

    endpoint = ScoreEndpoint(url)
    endpoint.score([{"prompt": "Hello", "response": "Hello! How can I help?"}])  # fail before step 1

    def score(pairs: list[tuple[list[dict], str]]) -> list[float]:
        return endpoint.score([{"prompt": _wire_prompt(messages), "response": answer}
                               for messages, answer in pairs])

    return RewardModelReward(score, f"api: {url}")


def _wire_prompt(messages: list[dict]) -> Any:
    """A lone user turn as its text (any /v1/score endpoint takes it), else the messages."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return messages


def _local_reward(cfg: "Config", device: str) -> RewardModelReward:
    from tunelab.infer.request import RequestError
    from tunelab.infer.score import RewardScorer, ScoreInput

    rm_cfg = reward_model_config(cfg, device)
    scorer = RewardScorer(rm_cfg)
    step = scorer.limits.choices

    def score(pairs: list[tuple[list[dict], str]]) -> list[float]:
        items = [ScoreInput(prompt=tuple(messages), response=answer) for messages, answer in pairs]
        labels = [f"completion {i}" for i in range(len(items))]
        values: list[float] = []
        try:
            for start in range(0, len(items), step):
                values += [v for v, _ in scorer.score(items[start:start + step],
                                                       labels=labels[start:start + step])]
        except RequestError as exc:
            raise ModelError(f"the reward model cannot score {exc.param}: {exc.problem}",
                             where="key 'reward_model'", hint=exc.hint) from None
        return values

    adapters = rm_cfg.model.adapter_name_or_path or []
    on = f"{adapters[0]} on {rm_cfg.model.model_name_or_path}" if adapters else rm_cfg.model.model_name_or_path
    return RewardModelReward(score, f"{cfg.rl.reward_model_type}: {on}, rendered with its own template")


def reward_model_config(cfg: "Config", device: str) -> "Config":
    """The recipe RewardScorer loads the reward model from: lora puts the rm adapter on the
    policy's base; full loads reward_model (with its adapter, if any). The rm run's render keys
    (template, enable_thinking, default_system) come along, as ``tunelab eval`` takes a run's."""
    from tunelab.config import load_config
    from tunelab.evaluate.loading import run_encoding_options
    from tunelab.infer.loading import base_model_name

    rl, model = cfg.rl, cfg.model
    if rl.reward_model_type == "lora":
        base, adapters = base_model_name(cfg), [rl.reward_model]
    else:
        base, adapters = rl.reward_model, list(rl.reward_model_adapters or [])
    trained = run_encoding_options(adapters[-1] if adapters else base)
    keys = {k: v for k, v in trained.items() if k in RENDER_KEYS}
    keys.update(model_name_or_path=base, adapter_name_or_path=",".join(adapters) or None,
                quantization_bit=rl.reward_model_quantization_bit, infer_device=device,
                torch_dtype=model.torch_dtype, trust_remote_code=model.trust_remote_code,
                cache_dir=model.cache_dir, max_choices=64)
    return load_config(None, keys)
