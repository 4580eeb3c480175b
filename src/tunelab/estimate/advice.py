"""What to change when a run does not fit, and what to say when it ran out of memory anyway."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Any, Callable

from tunelab.errors import TuneLabError
from tunelab.estimate.parts import GIB, price
from tunelab.estimate.plan import Plan
from tunelab.estimate.shape import ModelShape

_OOM_MESSAGES = ("out of memory", "not enough memory", "defaultcpuallocator: can't allocate memory")
_GPU_STEPS = (2, 4, 8, 16)
_CLOSEST = 5


@dataclass
class Suggestion:
    """One change to the recipe (recipe key -> new value) and the estimate it would give.

    ``num_gpus`` is the number of GPUs to launch on when the change needs more than one (it is
    not a recipe key: ``tunelab train`` uses every visible GPU, or ``NPROC_PER_NODE``).
    """

    change: dict[str, Any]
    description: str
    total: int
    fits: bool | None = None
    num_gpus: int | None = None


def suggest_changes(plan: Plan, shape: ModelShape, budget: int | None) -> list[Suggestion]:
    """Changes that lower the estimate: those that fit, gentlest first, else the closest few.

    ``budget`` is the per-GPU memory to aim for; None means any reduction is worth listing.
    """
    current = price(plan, shape).total
    found: list[Suggestion] = []
    for make in _PROPOSALS:
        try:
            proposal = make(plan, shape, budget)
        except TuneLabError:
            continue  # a change this model cannot take (e.g. a target it lacks)
        if proposal is None:
            continue
        change, description, new_plan = proposal
        total = price(new_plan, shape).total
        if total < current:
            fits = None if budget is None else total <= budget
            gpus = new_plan.num_gpus if new_plan.num_gpus != plan.num_gpus else None
            found.append(Suggestion(change, description, total, fits, gpus))
    fitting = [s for s in found if s.fits]
    # when nothing fits alone, the closest few still show which levers matter most
    return fitting or sorted(found, key=lambda s: s.total)[:_CLOSEST]


def _fits(plan: Plan, shape: ModelShape, budget: int | None) -> bool:
    return budget is not None and price(plan, shape).total <= budget


def _checkpointing(plan: Plan, shape: ModelShape, budget: int | None):
    if plan.gradient_checkpointing:
        return None
    return ({"gradient_checkpointing": True}, "recompute activations in backward (~30% slower)",
            replace(plan, gradient_checkpointing=True))


def _offloaded_checkpointing(plan: Plan, shape: ModelShape, budget: int | None):
    if plan.offload_activations:
        return None
    return ({"gradient_checkpointing": "offload"}, "checkpointing with the layer inputs in CPU RAM "
            "(slower still: each layer input crosses PCIe twice)",
            replace(plan, gradient_checkpointing=True, offload_activations=True))


def _attention(plan: Plan, shape: ModelShape, budget: int | None):
    if plan.attention != "eager":
        return None
    return ({"flash_attn": "sdpa"}, "use SDPA attention: no seq^2 score matrix",
            replace(plan, attention="sdpa"))


def _optimizer(plan: Plan, shape: ModelShape, budget: int | None):
    if "8bit" in plan.optim or "adam" not in plan.optim or plan.zero_stage:
        return None
    return ({"optim": "paged_adamw_8bit"}, "8-bit paged AdamW (bitsandbytes): 2 B of state per "
            "trained param", replace(plan, optim="paged_adamw_8bit"))


def _smaller_batch(plan: Plan, shape: ModelShape, budget: int | None):
    if plan.batch_size <= 1:
        return None
    effective = plan.batch_size * plan.grad_accum
    batch = plan.batch_size // 2
    while batch > 1 and not _fits(replace(plan, batch_size=batch), shape, budget):
        batch //= 2
    accum = -(-effective // batch)
    new = replace(plan, batch_size=batch, grad_accum=accum)
    return ({"per_device_train_batch_size": batch, "gradient_accumulation_steps": accum},
            f"batch {batch} x {accum} accumulation steps: same effective batch {batch * accum}", new)


def _shorter_cutoff(plan: Plan, shape: ModelShape, budget: int | None):
    cutoff = plan.cutoff_len // 2
    if cutoff < 256:
        return None
    while cutoff > 256 and not _fits(replace(plan, cutoff_len=cutoff), shape, budget):
        cutoff //= 2
    return ({"cutoff_len": cutoff}, f"truncate samples to {cutoff} tokens (longer ones lose their end)",
            replace(plan, cutoff_len=cutoff))


def _lora(plan: Plan, shape: ModelShape, budget: int | None):
    if plan.finetuning_type == "lora":
        return None
    return ({"finetuning_type": "lora", "lora_rank": 8, "lora_target": "all"},
            "train LoRA adapters (rank 8, all linear layers) instead of the base weights",
            replace(plan, finetuning_type="lora", lora_rank=8, lora_target=("all",)))


def _quantize(bits: int) -> Callable:
    def propose(plan: Plan, shape: ModelShape, budget: int | None):
        if plan.quantization_bit is not None and plan.quantization_bit <= bits:
            return None
        change: dict[str, Any] = {"quantization_bit": bits}
        new = replace(plan, quantization_bit=bits)
        if plan.finetuning_type != "lora":
            change.update(finetuning_type="lora", lora_rank=8, lora_target="all")
            new = replace(new, finetuning_type="lora", lora_rank=8, lora_target=("all",))
        return change, f"QLoRA: load the base in {bits}-bit (bitsandbytes, needs CUDA)", new
    return propose


def _zero(plan: Plan, shape: ModelShape, budget: int | None):
    """ZeRO-3 over the smallest GPU count that fits (or the most we try)."""
    if plan.quantization_bit or (plan.zero_stage >= 3 and plan.num_gpus >= _GPU_STEPS[-1]):
        return None
    gpus = next((n for n in _GPU_STEPS if n >= plan.num_gpus and
                 _fits(replace(plan, zero_stage=3, num_gpus=n), shape, budget)), None)
    gpus = gpus or max(_GPU_STEPS[-1], plan.num_gpus)
    new = replace(plan, zero_stage=3, num_gpus=gpus)
    change = {"deepspeed": {"zero_optimization": {"stage": 3}}}
    return change, f"DeepSpeed ZeRO-3 on {gpus} GPUs: weights, gradients and optimizer sharded", new


def _offload(plan: Plan, shape: ModelShape, budget: int | None):
    if plan.quantization_bit or plan.offload_optimizer:
        return None
    new = replace(plan, zero_stage=3, offload_optimizer=True, offload_params=True)
    change = {"deepspeed": {"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"},
                                                  "offload_param": {"device": "cpu"}}}}
    return change, "DeepSpeed ZeRO-3 with optimizer and weights offloaded to CPU RAM (slow)", new


def _everything(plan: Plan, shape: ModelShape, budget: int | None):
    """The single-GPU combination that saves the most: 4-bit LoRA, checkpointing, batch 1."""
    new = replace(plan, finetuning_type="lora", quantization_bit=4, gradient_checkpointing=True,
                  batch_size=1, grad_accum=plan.batch_size * plan.grad_accum, attention="sdpa",
                  lora_rank=plan.lora_rank if plan.finetuning_type == "lora" else 8,
                  zero_stage=0, offload_optimizer=False, offload_params=False)
    change = {"finetuning_type": "lora", "quantization_bit": 4, "gradient_checkpointing": True,
              "per_device_train_batch_size": 1, "gradient_accumulation_steps": new.grad_accum}
    if plan.attention == "eager":
        change["flash_attn"] = "sdpa"
    return change, "all together: 4-bit QLoRA, gradient checkpointing, batch 1", new


def _everything_sharded(plan: Plan, shape: ModelShape, budget: int | None):
    """ZeRO-3 with checkpointing and batch 1, over the fewest GPUs that fit (same method)."""
    if plan.quantization_bit:
        return None
    lean = replace(plan, gradient_checkpointing=True, batch_size=1, attention="sdpa",
                   grad_accum=plan.batch_size * plan.grad_accum)
    proposal = _zero(lean, shape, budget)
    if proposal is None:
        return None
    change, _, new = proposal
    change = {"gradient_checkpointing": True, "per_device_train_batch_size": 1,
              "gradient_accumulation_steps": new.grad_accum, **change}
    return change, (f"ZeRO-3 on {new.num_gpus} GPUs with gradient checkpointing and batch 1 "
                    f"(keeps {plan.finetuning_type} in full precision)"), new


_PROPOSALS = (_checkpointing, _offloaded_checkpointing, _attention, _optimizer, _smaller_batch, _lora, _quantize(8),
              _quantize(4), _shorter_cutoff, _zero, _offload, _everything, _everything_sharded)


def is_oom_error(exc: BaseException) -> bool:
    """True for torch's OutOfMemoryError and for RuntimeErrors that report an allocation failure."""
    torch = sys.modules.get("torch")  # an OOM can only come from torch if torch is loaded
    oom_type = getattr(torch, "OutOfMemoryError", None) if torch else None
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MESSAGES)


def explain_oom(exc: BaseException, *, step: int | None, estimate: Any, peak_bytes: int | None) -> str:
    """The message shown instead of a CUDA traceback when training runs out of memory."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    lines = [f"Out of memory at training step {step if step is not None else '?'}: {first}",
             f"  estimated peak: {_gib(estimate.total)} per GPU"
             + (f" of {_gib(estimate.device_memory)} on the device" if estimate.device_memory else ""),
             f"  measured peak before the failure: {_gib(peak_bytes) if peak_bytes else 'unknown'}"]
    biggest = sorted(estimate.components().items(), key=lambda kv: -kv[1])[:3]
    lines.append("  largest parts of the estimate: " + ", ".join(f"{k} {_gib(v)}" for k, v in biggest))
    suggestions = _oom_suggestions(estimate)
    if estimate.fits:
        lines.append("  the estimate said this fits: other processes on the GPU, long samples or "
                     "memory fragmentation can push past it; aim 25% lower:")
    lines.extend(f"  - {format_change(s.change, s.num_gpus)}: {s.description} (estimate {_gib(s.total)}"
                 + (")" if s.fits else ", still above the target)")
                 for s in suggestions[:6])
    if not suggestions:
        lines.append("  - no change in the recipe lowers the estimate; use a GPU with more memory")
    lines.append("  `tunelab estimate <recipe>` prints the full breakdown.")
    return "\n".join(lines)


def _oom_suggestions(estimate: Any) -> list[Suggestion]:
    if estimate.plan is None or estimate.shape is None:
        return list(estimate.suggestions)
    # Aim below the device when it is known and the estimate already said "too big"; otherwise
    # (the estimate said it fits, or no device is known) aim 25% below the estimate.
    known = estimate.device_memory and not estimate.fits
    budget = estimate.device_memory if known else int(0.75 * estimate.total)
    return suggest_changes(estimate.plan, estimate.shape, budget) or list(estimate.suggestions)


def format_change(change: dict[str, Any], num_gpus: int | None = None) -> str:
    """``{"a": 1, "b": True}`` -> ``a=1 b=true``: recipe keys as ``key=value`` overrides, led by
    ``NPROC_PER_NODE=N`` when the change needs N GPUs."""
    parts = [f"NPROC_PER_NODE={num_gpus}"] if num_gpus else []
    for key, value in change.items():
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, dict):
            value = _describe_deepspeed(value)
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _describe_deepspeed(value: dict[str, Any]) -> str:
    zero = value.get("zero_optimization", {})
    offload = " + CPU offload" if "offload_optimizer" in zero else ""
    return f"<ZeRO-{zero.get('stage', '?')}{offload} config>"


def _gib(n: int | None) -> str:
    return "unknown" if n is None else f"{n / GIB:.1f} GiB"
