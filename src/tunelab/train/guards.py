"""Callbacks that stop training safely: on a non-finite loss or gradient, and on Ctrl-C / SIGTERM.

Both only *ask* the Trainer to stop (``control``), so it leaves its loop the normal way and the
run directory stays consistent; the workflow then decides how the run ends (failed, interrupted).
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback


@dataclass
class NonFinite:
    """Where training went non-finite: the optimizer step (1-based) and what was not finite."""

    step: int
    what: str


class NonFiniteGuard(TrainerCallback):
    """Stops at the first optimizer step whose gradients (or logged loss) are NaN or inf.

    The check runs before the optimizer step and drops that step's gradients, so the weights stay
    those of the last good step; the step is never saved as a checkpoint.
    """

    def __init__(self):
        self.found: NonFinite | None = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        import torch

        params = [p for p in model.parameters() if p.grad is not None] if model is not None else []
        if not params:  # DeepSpeed keeps gradients to itself: the logged loss is checked instead
            return
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        if not torch.isfinite(norm):
            self.found = NonFinite(step=state.global_step + 1, what=f"gradient norm is {norm.item()}")
            for param in params:
                param.grad = None  # optimizers skip parameters without a gradient

    def on_step_end(self, args, state, control, **kwargs):
        if self.found is not None:
            control.should_training_stop = True
            control.should_save = False
            control.should_log = True  # the failing step's (non-finite) loss goes into the events

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if self.found is None and isinstance(value, float) and not math.isfinite(value):
                self.found = NonFinite(step=state.global_step, what=f"logged {key} is {value}")
        if self.found is not None:
            control.should_training_stop = True
            control.should_save = False


class StopRequest(TrainerCallback):
    """Turns the first SIGINT / SIGTERM into "save a checkpoint at this step, then stop".

    A second signal stops at once (KeyboardInterrupt). Signals closer together than
    ``same_request_s`` count as one request: a terminal's Ctrl-C reaches every process of a
    torchrun group, and torchrun forwards it once more.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, same_request_s: float = 1.0):
        self.same_request_s = same_request_s
        self.signal_name: str | None = None
        self.at: float = 0.0
        self.step: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Handle SIGINT and SIGTERM from now on (main thread only); ``uninstall`` restores."""
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if self.signal_name is None:
            self.signal_name, self.at = signal.Signals(signum).name, now
            print(f"\n{self.signal_name}: saving a checkpoint at the current step, then stopping "
                  "(send it again to stop at once)", flush=True)
        elif now - self.at > self.same_request_s:
            raise KeyboardInterrupt

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def on_step_end(self, args, state, control, **kwargs):
        if self.step is None and _on_any_process(self.requested):
            self.step = state.global_step
            control.should_save = True
            control.should_training_stop = True


def _on_any_process(flag: bool) -> bool:
    """True on every process when ``flag`` is true on any: all processes must stop at one step,
    or the others wait for ever in the next gradient all-reduce."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    value = torch.tensor([int(flag)], device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
