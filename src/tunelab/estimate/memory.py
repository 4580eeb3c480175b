"""Know before you train: peak accelerator memory of a recipe, from the model's config alone.

``estimate_memory(cfg)`` prices weights, adapters, gradients, optimizer state, activations,
logits and framework overhead (see ``parts`` for each formula), plus the reference model, reward
model and generation cache of the post-training stages (see ``stages``); it says whether the
total fits the device, and when it does not, proposes recipe changes with their own estimates. It is pure
and fast (the model is counted on the meta device and cached), so a UI can call it on every
change. It returns data only; ``tunelab.cli.format_estimate`` turns it into text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError
from tunelab.estimate.advice import Suggestion, suggest_changes
from tunelab.estimate.parts import price
from tunelab.estimate.plan import Plan, plan_from_config
from tunelab.estimate.shape import ModelShape, load_model_config, shape_of
from tunelab.estimate.stages import stage_notes
from tunelab.sizes import parse_size as _parse_size

if TYPE_CHECKING:
    from tunelab.config.schema import Config

ACCURACY_NOTE = ("accuracy: checked against the measured peak memory of CPU training steps "
                 "(BENCHMARKS.md); not yet measured on a GPU")
COMPONENTS = ("weights", "adapter", "reference", "reward_model", "gradients", "optimizer",
              "generation", "activations", "logits", "overlap", "overhead")


@dataclass
class MemoryEstimate:
    """Peak memory per GPU, in bytes, by component; ``fits`` is None when no device is known."""

    weights: int
    adapter: int
    reference: int
    reward_model: int
    gradients: int
    optimizer: int
    generation: int
    activations: int
    logits: int
    overlap: int
    overhead: int
    total: int
    total_params: int
    trainable_params: int
    fits: bool | None
    device_memory: int | None
    num_gpus: int = 1
    model: str | None = None
    suggestions: list[Suggestion] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    plan: Plan | None = field(default=None, repr=False, compare=False)
    shape: ModelShape | None = field(default=None, repr=False, compare=False)

    def components(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COMPONENTS}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: byte counts, parameter counts, details, suggestions and notes."""
        return {
            "model": self.model, "total_bytes": self.total, "fits": self.fits,
            "device_memory_bytes": self.device_memory, "num_gpus": self.num_gpus,
            "total_params": self.total_params, "trainable_params": self.trainable_params,
            "components_bytes": self.components(), "details": self.details,
            "suggestions": [{"change": s.change, "description": s.description,
                             "total_bytes": s.total, "fits": s.fits, "num_gpus": s.num_gpus} for s in self.suggestions],
            "notes": self.notes,
        }


def model_shape(cfg: "Config") -> ModelShape:
    """The counted shape of the recipe's model (config.json only, no weights)."""
    m = cfg.model
    config = load_model_config(m.model_name_or_path, trust_remote_code=m.trust_remote_code,
                               cache_dir=m.cache_dir, revision=m.model_revision)
    return shape_of(config, trust_remote_code=m.trust_remote_code)


def estimate_memory(cfg: "Config", *, gpu_memory_bytes: int | None = None,
                    num_gpus: int = 1, shape: ModelShape | None = None) -> MemoryEstimate:
    """Price the recipe's training step per GPU and, when it does not fit, suggest changes."""
    if num_gpus < 1:
        raise ConfigError(f"must be at least 1, got {num_gpus}", where="number of GPUs")
    shape = shape or model_shape(cfg)
    plan = plan_from_config(cfg, num_gpus)
    return estimate_plan(plan, shape, gpu_memory_bytes, model=cfg.model.model_name_or_path)


def estimate_plan(plan: Plan, shape: ModelShape, gpu_memory_bytes: int | None = None,
                  model: str | None = None) -> MemoryEstimate:
    plan, checkpointing = resolve_checkpointing(plan, shape, gpu_memory_bytes)
    priced = price(plan, shape)
    total = priced.total
    fits = None if gpu_memory_bytes is None else total <= gpu_memory_bytes
    suggestions = suggest_changes(plan, shape, gpu_memory_bytes) if fits is False else []
    return MemoryEstimate(**priced.components, total=total, total_params=priced.total_params,
                          trainable_params=priced.trainable_params, fits=fits,
                          device_memory=gpu_memory_bytes, num_gpus=plan.num_gpus, model=model,
                          suggestions=suggestions, details=priced.details,
                          notes=[checkpointing] + _notes(plan) + priced.notes, plan=plan, shape=shape)


def resolve_checkpointing(plan: Plan, shape: ModelShape, budget: int | None) -> tuple[Plan, str]:
    """``gradient_checkpointing: auto`` decided against the device: on only when the step is
    estimated not to fit without it. Returns the plan with the choice made and why."""
    if not plan.checkpointing_auto:
        mode = "offload" if plan.offload_activations else "on" if plan.gradient_checkpointing else "off"
        return plan, f"gradient checkpointing: {mode} (as the recipe sets it)"
    plan = replace(plan, checkpointing_auto=False)
    if budget is None:
        return plan, "gradient checkpointing: off (auto: no GPU memory known, nothing to save)"
    without = price(plan, shape).total
    if without <= budget:
        return plan, (f"gradient checkpointing: off (auto: the step fits without it, "
                      f"{without / 2**30:.2f} of {budget / 2**30:.2f} GiB)")
    return replace(plan, gradient_checkpointing=True), (
        f"gradient checkpointing: on (auto: without it the step needs {without / 2**30:.2f} GiB, "
        f"more than the {budget / 2**30:.2f} GiB of the GPU)")


def _notes(plan: Plan) -> list[str]:
    notes = [f"rows are assumed full ({plan.cutoff_len} tokens); shorter unpacked batches use less",
             ACCURACY_NOTE]
    if plan.attention == "fa2":
        notes.insert(0, "fa2 is priced like SDPA (neither keeps the seq^2 score matrix)")
    if plan.liger:
        notes.insert(0, "Liger: its fused cross-entropy is priced like the chunked loss, its fused "
                        "RMSNorm/SwiGLU like the plain layers (an upper bound)")
    if plan.torch_compile:
        notes.insert(0, "torch_compile is priced as eager execution (compiled kernels often save more)")
    if plan.offload_activations:
        notes.insert(0, "offloaded checkpointing: the layer inputs live in CPU RAM "
                        f"(pinned host memory, not counted above)")
    return stage_notes(plan) + notes


def detect_device_memory() -> int | None:
    """Total memory of CUDA device 0, or None when there is no GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.get_device_properties(0).total_memory)


def parse_size(value: str | int | float) -> int:
    """GPU memory in bytes: ``"24GB"``, ``"1.5GiB"``, ``"500MB"`` or ``24`` (a plain number means GB).

    GB and GiB both mean 2**30 bytes here: GPU makers' "24 GB" card holds 24 GiB, so decimal
    units would understate every card by 7%.
    """
    return _parse_size(value, where="GPU memory", binary=True)
