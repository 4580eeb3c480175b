"""Time per step and total time: from a table of device peaks, or from a short calibration run.

FLOPs per trained token (Kaplan et al. 2020, with N = parameters that take part in matmuls,
i.e. all but the input embedding, and the attention term 6 * L * s * d_attn):

- full:   6N  (forward 2N, backward 2N for input gradients + 2N for weight gradients)
- LoRA:   4N  (frozen weights need input gradients only; the adapters add ~0)
- freeze: 2N + 4 * N_trained (frozen layers below the trained ones need no backward)
- gradient checkpointing adds one more forward: + 2N.

Seconds = FLOPs / (device bf16 dense peak x MFU). The MFU (35%) is an assumption, not a
measurement; ``calibrate`` measures the achieved FLOP/s on this machine instead.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

from tunelab.errors import ModelError
from tunelab.estimate.parts import freeze_trainable
from tunelab.estimate.plan import Plan
from tunelab.estimate.shape import ModelShape, shape_of_model
from tunelab.model.adapters import lora_targets
from tunelab.model.loader import pick_device

ASSUMED_MFU = 0.35
# name -> (memory GiB, dense bf16 tensor TFLOP/s; fp16 for cards without bf16), from vendor sheets
DEVICES: dict[str, tuple[int, float]] = {
    "H200": (141, 989.0),
    "H100": (80, 989.0),
    "A100-80GB": (80, 312.0),
    "A100-40GB": (40, 312.0),
    "L40S": (48, 362.0),
    "L4": (24, 121.0),
    "RTX 4090": (24, 165.0),
    "RTX 3090": (24, 71.0),
    "V100": (16, 125.0),
    "T4": (16, 65.0),
}
CPU_CALIBRATION_TOKENS = 256
CALIBRATION_BUDGET_BYTES = 2 * 1024**3  # model + gradients + optimizer of the calibration model


@dataclass
class TimeEstimate:
    seconds_per_step: float
    tokens_per_step: int
    flops_per_second: float
    source: str
    total_steps: int | None = None
    assumptions: list[str] = field(default_factory=list)

    @property
    def total_seconds(self) -> float | None:
        return None if self.total_steps is None else self.total_steps * self.seconds_per_step

    def to_dict(self) -> dict[str, Any]:
        return {"seconds_per_step": self.seconds_per_step, "tokens_per_step": self.tokens_per_step,
                "flops_per_second": self.flops_per_second, "source": self.source,
                "total_steps": self.total_steps, "total_seconds": self.total_seconds,
                "assumptions": self.assumptions}


def match_device(name: str | None) -> str | None:
    """The table entry for a device name such as 'NVIDIA A100-SXM4-80GB' or 'rtx4090'."""
    if not name:
        return None
    flat = name.upper().replace(" ", "").replace("-", "").replace("_", "")
    for key in sorted(DEVICES, key=len, reverse=True):
        model, _, size = key.replace(" ", "").partition("-")
        if model in flat and (not size or size in flat):
            return key
    if "A100" in flat:
        return "A100-40GB" if "40" in flat else "A100-80GB"
    return None


def flops_per_token(plan: Plan, shape: ModelShape) -> float:
    """Training FLOPs per token under the formulas in this module's docstring."""
    n = shape.total_params - shape.embedding_params + (shape.embedding_params if shape.tied_embeddings else 0)
    attention = shape.num_layers * plan.cutoff_len * shape.q_dim
    if plan.finetuning_type == "full":
        train = 6 * n + 6 * attention
    elif plan.finetuning_type == "freeze":
        share = min(1.0, freeze_trainable(plan, shape) / max(n, 1))
        train = 2 * n + 4 * share * n + (2 + 4 * share) * attention
    else:
        train = 4 * n + 4 * attention
    if plan.gradient_checkpointing:
        train += 2 * n + 2 * attention
    return float(train)


def estimate_time(plan: Plan, shape: ModelShape, *, flops_per_second: float, source: str,
                  max_steps: int | None = None, epochs: float | None = None,
                  samples: int | None = None) -> TimeEstimate:
    """Seconds per optimizer step and, when the step count can be known, the total."""
    tokens = plan.tokens * plan.grad_accum  # per GPU; GPUs work in parallel
    seconds = flops_per_token(plan, shape) * tokens / flops_per_second
    assumptions = [f"each row is full ({plan.cutoff_len} tokens); FLOPs = {_formula(plan)} per token"]
    steps = None
    if max_steps and max_steps > 0:
        steps = max_steps
        assumptions.append(f"max_steps = {max_steps}")
    elif samples:
        per_step = plan.batch_size * plan.grad_accum * plan.num_gpus
        steps = math.ceil((epochs or 1) * math.ceil(samples / per_step))
        assumptions.append(f"{samples:,} samples x {epochs:g} epochs / {per_step} samples per step")
    else:
        assumptions.append("total time needs the number of training rows or max_steps")
    return TimeEstimate(seconds, tokens * plan.num_gpus, flops_per_second, source, steps, assumptions)


def _formula(plan: Plan) -> str:
    base = {"full": "6N", "lora": "4N", "freeze": "2N + 4N_trained"}[plan.finetuning_type]
    return base + (" + 2N (checkpointing)" if plan.gradient_checkpointing else "") + " + attention"


def table_rate(device: str) -> tuple[float, str]:
    """Achievable FLOP/s for a table device at the assumed MFU, and how it was derived."""
    tflops = DEVICES[device][1]
    return tflops * 1e12 * ASSUMED_MFU, f"{device} {tflops:g} TFLOP/s peak x {ASSUMED_MFU:.0%} assumed MFU"


def calibrate(config: Any, plan: Plan, *, steps: int = 3, device: str | None = None) -> tuple[float, str]:
    """Measure achieved FLOP/s with a few forward+backward+optimizer steps of the architecture.

    Random weights at the recipe's layer shapes; the layer count (and on CPU the vocabulary and
    tokens) is cut so the model fits a small budget; FLOPs are counted for what actually ran.
    """
    import torch

    device = pick_device(device or "auto", key="calibration device")
    small = _calibration_config(config, plan, device)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = _calibration_model(small, plan, dtype, device)
    calib_plan = _calibration_plan(plan, device)
    shape = shape_of_model(model, small)
    batch = torch.randint(0, small.vocab_size, (calib_plan.batch_size, calib_plan.cutoff_len), device=device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    try:
        _train_step(model, optimizer, batch)  # warm-up: kernels, allocator, lazy init
        start = time.perf_counter()
        for _ in range(steps):
            _train_step(model, optimizer, batch)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / steps
    except RuntimeError as exc:
        raise ModelError(f"calibration run failed: {str(exc).splitlines()[0]}", where="calibration run",
                         hint="lower per_device_train_batch_size or cutoff_len, or estimate from "
                              "the device table instead") from None
    rate = flops_per_token(calib_plan, shape) * calib_plan.tokens / seconds
    how = (f"calibrated on {device}: {steps} steps of {small.num_hidden_layers} layer(s), "
           f"{calib_plan.batch_size} x {calib_plan.cutoff_len} tokens, {seconds:.2f} s/step")
    return rate, how


def _calibration_plan(plan: Plan, device: str) -> Plan:
    if device == "cuda":
        return replace(plan, quantization_bit=None, grad_accum=1)
    return replace(plan, quantization_bit=None, grad_accum=1, batch_size=1,
                   cutoff_len=min(plan.cutoff_len, CPU_CALIBRATION_TOKENS))


def _calibration_config(config: Any, plan: Plan, device: str) -> Any:
    """A copy of the config with as many layers as fit the budget (at least one)."""
    import copy

    small = copy.deepcopy(config.get_text_config() if hasattr(config, "get_text_config") else config)
    layers = small.num_hidden_layers
    h, i = small.hidden_size, getattr(small, "intermediate_size", 4 * small.hidden_size)
    per_layer = (4 * h * h + 3 * h * i) * (16 if plan.finetuning_type == "full" else 4)
    keep = max(1, min(layers, CALIBRATION_BUDGET_BYTES // max(per_layer, 1)))
    if device == "cpu":
        small.vocab_size = min(small.vocab_size, 32000)
    for key, value in vars(small).items():
        if isinstance(value, list) and len(value) == layers:
            setattr(small, key, value[:keep])  # per-layer settings such as layer_types
    small.num_hidden_layers = keep
    return small


def _calibration_model(config: Any, plan: Plan, dtype: Any, device: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype).to(device)
    if plan.finetuning_type == "lora":
        from peft import LoraConfig, get_peft_model

        wanted = lora_targets(model, list(plan.lora_target))
        model = get_peft_model(model, LoraConfig(r=plan.lora_rank, target_modules=wanted,
                                                 use_dora=plan.use_dora, task_type="CAUSAL_LM"))
    if plan.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    return model


def _train_step(model: Any, optimizer: Any, batch: Any) -> None:
    loss = model(input_ids=batch, labels=batch).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
