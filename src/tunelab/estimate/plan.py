"""The settings that decide training memory, read from a recipe into one flat :class:`Plan`.

Suggestions are tried by changing a Plan (``dataclasses.replace``) and pricing it again, which
is pure arithmetic: the board can show an estimate on every keystroke.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError
from tunelab.estimate.shape import ModelShape
from tunelab.estimate.stages import stage_settings

if TYPE_CHECKING:
    from tunelab.config.schema import Config

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Plan:
    """What a run trains and how, as far as memory and time are concerned."""

    weight_dtype: str = "bfloat16"
    mixed_precision: bool = False
    quantization_bit: int | None = None
    double_quantization: bool = True
    finetuning_type: str = "lora"
    lora_rank: int = 8
    lora_target: tuple[str, ...] = ("all",)
    additional_target: tuple[str, ...] = ()
    use_dora: bool = False
    lora_dropout: float = 0.0
    freeze_layers: int = 2
    freeze_modules: tuple[str, ...] = ("all",)
    freeze_extra: tuple[str, ...] = ()
    gradient_checkpointing: bool = False
    attention: str = "sdpa"
    chunked_loss: bool = True
    batch_size: int = 1
    grad_accum: int = 1
    cutoff_len: int = 2048
    optim: str = "adamw_torch_fused"
    zero_stage: int = 0
    offload_optimizer: bool = False
    offload_params: bool = False
    num_gpus: int = 1
    # post-training stages (see estimate.stages)
    stage: str = "sft"
    sequences: int = 1  # sequences one row feeds with gradients: 2 for rm/dpo pairs
    completion_len: int = 0  # grpo: sampled tokens after the cutoff_len prompt
    reference: str = "none"  # none | policy (adapter disabled, or a copy) | model (ref_model)
    reference_bit: int | None = None
    reference_shape: ModelShape | None = None
    reward_model: str = "none"  # ppo: none | full | lora | api
    reward_bit: int | None = None
    reward_shape: ModelShape | None = None
    reward_adapter_bytes: int | None = None

    @property
    def weight_bytes(self) -> int:
        return DTYPE_BYTES[self.weight_dtype]

    @property
    def compute_bytes(self) -> int:
        """Bytes per activation element: half precision whenever weights or autocast are half."""
        return 2 if self.weight_bytes == 2 or self.mixed_precision else 4

    @property
    def seq_len(self) -> int:
        """Tokens of one sequence: cutoff_len, plus the sampled answer for grpo."""
        return self.cutoff_len + self.completion_len

    @property
    def rows(self) -> int:
        """Sequences in one micro-batch: the rows, times 2 for pairs, times num_generations."""
        return self.batch_size * self.sequences

    @property
    def tokens(self) -> int:
        """Tokens in one micro-batch on one device (sequences padded or packed to seq_len)."""
        return self.rows * self.seq_len


def plan_from_config(cfg: "Config", num_gpus: int = 1) -> Plan:
    """Read the memory-relevant keys of a recipe (see docs/INTERNALS.md for the sections)."""
    m, meth, d = cfg.model, cfg.method, cfg.data
    bf16, fp16 = bool(cfg.training_value("bf16")), bool(cfg.training_value("fp16"))
    zero = _deepspeed_settings(cfg.training_value("deepspeed"))
    return Plan(
        weight_dtype=_weight_dtype(m.torch_dtype, bf16, fp16),
        mixed_precision=bf16 or fp16,
        quantization_bit=m.quantization_bit,
        double_quantization=bool(m.double_quantization),
        finetuning_type=meth.finetuning_type,
        lora_rank=int(meth.lora_rank),
        lora_target=tuple(meth.lora_target or ["all"]),
        additional_target=tuple(meth.additional_target or ()),
        use_dora=bool(meth.use_dora),
        lora_dropout=float(meth.lora_dropout or 0.0),
        freeze_layers=int(meth.freeze_trainable_layers),
        freeze_modules=tuple(meth.freeze_trainable_modules or ["all"]),
        freeze_extra=tuple(meth.freeze_extra_modules or ()),
        gradient_checkpointing=bool(meth.gradient_checkpointing),
        attention={"disabled": "eager", "eager": "eager", "fa2": "fa2"}.get(m.flash_attn, "sdpa"),
        chunked_loss=bool(meth.chunked_loss),
        batch_size=int(cfg.training_value("per_device_train_batch_size")),
        grad_accum=int(cfg.training_value("gradient_accumulation_steps")),
        cutoff_len=int(d.cutoff_len),
        optim=str(cfg.training_value("optim")),
        num_gpus=num_gpus,
        **zero,
        **stage_settings(cfg),
    )


def _weight_dtype(requested: str, bf16: bool, fp16: bool) -> str:
    # "auto" follows tunelab.model.loader.pick_dtype on a GPU; we estimate for an accelerator,
    # so the CPU fallback (fp32) does not apply here.
    if requested != "auto":
        return requested
    return "float16" if fp16 and not bf16 else "bfloat16"


def _deepspeed_settings(value: Any) -> dict[str, Any]:
    """ZeRO stage and CPU offload from the ``deepspeed`` key (a JSON path or a dict)."""
    if not value:
        return {}
    config = value if isinstance(value, dict) else _read_deepspeed_file(str(value))
    zero = config.get("zero_optimization") or {}
    stage = zero.get("stage", 0)
    if not isinstance(stage, int):
        stage = 0  # "auto" lets DeepSpeed choose; we cannot know its pick
    return {
        "zero_stage": stage,
        "offload_optimizer": _offloaded(zero.get("offload_optimizer")),
        "offload_params": _offloaded(zero.get("offload_param")),
    }


def _offloaded(section: Any) -> bool:
    return isinstance(section, dict) and section.get("device") in ("cpu", "nvme")


def _read_deepspeed_file(path: str) -> dict[str, Any]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"DeepSpeed config {path} not found", where="key 'deepspeed'",
                          hint="point at a DeepSpeed JSON file, e.g. one with zero_optimization.stage: 3")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON ({exc.msg}, line {exc.lineno})", where=str(file)) from None
