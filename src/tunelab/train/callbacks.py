"""Trainer callbacks that write run events and show a progress bar with loss and ETA."""

from __future__ import annotations

import math
import time
from typing import Any

from transformers import TrainerCallback

from tunelab.runs import RunDir



class RunEventsCallback(TrainerCallback):
    """Appends one JSON line per logging step to the run's events.jsonl (main process only).

    Besides loss, learning rate and throughput, an event keeps every other number the trainer
    logged under the trainer's name, e.g. TRL's ``rewards/chosen`` and ``rewards/rejected``
    (``eval_``-prefixed in eval events)."""

    def __init__(self, run: RunDir, base_name: str | None = None):
        self.run = run
        self.base_name = base_name
        self.start = time.time()
        self.start_step = 0
        self.start_tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.time()
        self.start_step = state.global_step
        self.start_tokens = state.num_input_tokens_seen
        if state.is_world_process_zero:
            self.run.append_event({"type": "train_begin", "step": state.global_step,
                                   "total_steps": state.max_steps})
            self.run.set_status("running")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "loss" not in logs and "eval_loss" not in logs:
            return
        self.run.append_event(self._event(state, logs))

    def _event(self, state: Any, logs: dict) -> dict:
        elapsed = time.time() - self.start
        done = state.global_step - self.start_step
        remaining = state.max_steps - state.global_step
        tokens = state.num_input_tokens_seen
        event = {
            "type": "eval" if "eval_loss" in logs else "log",
            "step": state.global_step,
            "total_steps": state.max_steps,
            "epoch": round(state.epoch or 0.0, 4),
            "loss": logs.get("loss", logs.get("eval_loss")),
            "lr": logs.get("learning_rate"),
            "grad_norm": logs.get("grad_norm"),
            "tokens_seen": tokens,
            "tokens_per_s": round((tokens - self.start_tokens) / elapsed, 2) if elapsed > 0 else None,
            "elapsed_s": round(elapsed, 2),
            "eta_s": round(elapsed / done * remaining, 1) if done > 0 else None,
        }
        metrics = _stage_metrics(logs)
        if metrics:
            event["metrics"] = metrics
        return _mark_nonfinite(event)

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from tunelab.model.adapters import record_base_name

            record_base_name(self.run.path / f"checkpoint-{state.global_step}", self.base_name)
            self.run.append_event({"type": "checkpoint", "step": state.global_step})

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.run.append_event({"type": "train_end", "step": state.global_step,
                                   "total_steps": state.max_steps,
                                   "elapsed_s": round(time.time() - self.start, 2)})


# Logged values the event carries under its own names; every other number is a metric.
_EVENT_KEYS = frozenset({"loss", "eval_loss", "learning_rate", "grad_norm", "epoch"})


def _stage_metrics(logs: dict) -> dict:
    """The trainer's other logged numbers under their own names (TRL's ``reward``,
    ``rewards/<function>/mean``, ``kl``, ``completions/mean_length``, ...); a non-finite one
    becomes null, as in the event itself."""
    return {key: (value if math.isfinite(value) else None) for key, value in logs.items()
            if (key.startswith("eval_") or key not in _EVENT_KEYS)  # an evaluation keeps all its figures
            and isinstance(value, (int, float)) and not isinstance(value, bool)}


def _mark_nonfinite(event: dict) -> dict:
    """NaN / inf become null (JSON has no NaN) and are named under "nonfinite", so a reader can
    never take them for a number such as 0.0."""
    bad = {key: str(value) for key, value in event.items()
           if isinstance(value, float) and not math.isfinite(value)}
    if bad:
        event.update(dict.fromkeys(bad))
        event["nonfinite"] = bad
    return event


class LossProgressCallback(TrainerCallback):
    """A tqdm bar: step/total, ETA (tqdm's), and the latest loss (and eval loss) as a postfix."""

    def __init__(self):
        self.bar = None
        self.step = 0
        self.shown: dict[str, str] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train",
                            dynamic_ncols=True, unit="step")
        self.step = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.step)
        self.step = state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None or not logs:
            return
        if "loss" in logs:
            self.shown.update(loss=f"{logs['loss']:.4f}", lr=f"{logs.get('learning_rate', 0):.2e}")
            if isinstance(logs.get("reward"), (int, float)):  # online stages: the mean reward
                self.shown["reward"] = f"{logs['reward']:.4f}"
            if isinstance(logs.get("accuracy"), (int, float)):  # rm: how often chosen scores higher
                self.shown["acc"] = f"{logs['accuracy']:.2f}"
            if isinstance(logs.get("rewards/margins"), (int, float)):  # dpo/kto: chosen - rejected
                self.shown["margin"] = f"{logs['rewards/margins']:.4f}"
            if isinstance(logs.get("rewards/accuracies"), (int, float)):  # dpo: pairs ranked right
                self.shown["acc"] = f"{logs['rewards/accuracies']:.2f}"
        if "eval_loss" in logs:  # kept on the line until the next evaluation
            self.shown["eval_loss"] = f"{logs['eval_loss']:.4f}"
        if "loss" in logs or "eval_loss" in logs:
            self.bar.set_postfix(self.shown)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
