"""Text for the terminal from the estimate's data: the memory breakdown and the time estimate.

The estimate itself (``tunelab.estimate``) returns numbers; how they read, and which command-line
flags to suggest, belongs here with the commands that print them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunelab.estimate.advice import format_change
from tunelab.estimate.parts import GIB

if TYPE_CHECKING:
    from tunelab.estimate.memory import MemoryEstimate
    from tunelab.estimate.timing import TimeEstimate

_NO_REFERENCE = ("pt", "sft", "rm")  # stages that never have a reference model (no line for it)
COMPONENT_LABELS = {
    "weights": "weights",
    "adapter": "adapter weights",
    "reference": "reference model",
    "reward_model": "reward model",
    "gradients": "gradients",
    "optimizer": "optimizer state",
    "generation": "generation (KV cache)",
    "activations": "activations",
    "logits": "logits / loss",
    "overlap": "overlap (not at peak)",
    "overhead": "framework overhead",
}


def format_estimate(est: "MemoryEstimate") -> str:
    """A readable breakdown with GiB figures, the verdict and any suggestions."""
    trained = est.trainable_params / est.total_params if est.total_params else 0
    gpus = f" per GPU ({est.num_gpus} GPUs)" if est.num_gpus > 1 else ""
    lines = [f"Memory estimate for {est.model or 'the model'}: {est.total_params:,} params, "
             f"{est.trainable_params:,} trainable ({trained:.2%})",
             f"  {'component':<24}{'GiB':>9}   how"]
    for name, value in est.components().items():
        if value == 0 and name in ("adapter", "overlap", "reward_model", "generation"):
            continue
        if value == 0 and name == "reference" and (est.plan is None or est.plan.stage in _NO_REFERENCE):
            continue
        lines.append(f"  {COMPONENT_LABELS[name]:<24}{value / GIB:>9.2f}   {est.details.get(name, '')}")
    lines.append(f"  {'total peak' + gpus:<24}{est.total / GIB:>9.2f}")
    lines.append(_verdict(est))
    if est.suggestions:
        lines.append("To fit, change one of (new estimate):")
        for s in est.suggestions:
            mark = "fits" if s.fits else "still too big"
            lines.append(f"  {format_change(s.change, s.num_gpus)}\n      {s.description}: "
                         f"{s.total / GIB:.2f} GiB ({mark})")
    lines.extend(f"note: {n}" for n in est.notes)
    return "\n".join(lines)


def _verdict(est: "MemoryEstimate") -> str:
    if est.device_memory is None:
        return "device: no GPU detected; pass --gpu-memory (e.g. 24GB) to check the fit"
    have = f"{est.device_memory / GIB:.2f} GiB"
    if est.fits:
        return f"device: {have} -> fits ({(est.device_memory - est.total) / GIB:.2f} GiB to spare)"
    return f"device: {have} -> does NOT fit (needs {(est.total - est.device_memory) / GIB:.2f} GiB more)"


def format_time(est: "TimeEstimate") -> str:
    """Seconds per step, the total when the step count is known, and the assumptions."""
    lines = [f"Time estimate ({est.source}):",
             f"  {est.seconds_per_step:.2f} s per optimizer step ({est.tokens_per_step:,} tokens, "
             f"at {est.flops_per_second / 1e12:.2f} TFLOP/s)"]
    if est.total_seconds is not None:
        lines.append(f"  {est.total_steps:,} steps -> {_duration(est.total_seconds)} in total")
    lines.extend(f"  assumed: {a}" for a in est.assumptions)
    if est.total_steps is None:
        lines.append("  pass --samples N (rows in the training data) for the total time")
    lines.append("  this is an estimate: data loading, evaluation and saving are not counted")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"
