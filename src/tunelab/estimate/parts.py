"""Peak accelerator memory of one training step, component by component, in bytes.

Every formula states what it counts; the comments say which library behaviour it follows
(PEFT keeps adapters in fp32, ``prepare_model_for_kbit_training`` upcasts the unquantized
parameters of a QLoRA base, transformers upcasts logits to fp32 for the loss). The figures are
checked against exact parameter counts and against measured peak memory of CPU training steps
(activations: see ``activations``); on a GPU they are not yet measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tunelab.errors import ConfigError
from tunelab.estimate.activations import activation_bytes, logit_bytes
from tunelab.estimate.plan import Plan
from tunelab.estimate.shape import ModelShape, count_text as _count
from tunelab.estimate.stages import generation_bytes, quantized_linear_bytes, reference_bytes, reward_bytes
from tunelab.train.stages import ONLINE_STAGES
from tunelab.model.adapters import layer_index, resolve_lora_targets

GIB = 1024**3
CUDA_CONTEXT_BYTES = 512 * 1024**2  # CUDA context + cuBLAS workspace, outside torch's allocator
ALLOCATOR_SLACK = 0.05  # fragmentation in torch's caching allocator


@dataclass
class Priced:
    """Components in bytes (per GPU), a one-line explanation of each, and parameter counts."""

    components: dict[str, int]
    details: dict[str, str]
    total_params: int
    trainable_params: int
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.components.values())


def lora_targets(plan: Plan, shape: ModelShape) -> list[str]:
    """Short names of the linear layers that get LoRA ("all" = every linear but the head)."""
    return resolve_lora_targets(sorted({li.short for li in shape.linears}), list(plan.lora_target))


def lora_params(plan: Plan, shape: ModelShape) -> int:
    """rank x (in + out) per targeted linear, plus DoRA's magnitude vector (out) per target."""
    targets = set(lora_targets(plan, shape))
    count = 0
    for li in shape.linears:
        if li.short in targets:
            count += plan.lora_rank * (li.in_features + li.out_features)
            count += li.out_features if plan.use_dora else 0
    return count


def saved_module_params(plan: Plan, shape: ModelShape) -> int:
    """Parameters of ``additional_target`` modules, which PEFT trains as full copies."""
    count = 0
    for name in plan.additional_target:
        size = shape.module_size(name)
        if not size:
            raise ConfigError(f"module {name} not found in the model", where="key 'additional_target'",
                              hint="use top-level names such as embed_tokens, lm_head")
        count += size
    return count


def freeze_trainable(plan: Plan, shape: ModelShape) -> int:
    """Parameters trained by ``finetuning_type: freeze`` (same rule as model.adapters)."""
    n, total_layers = plan.freeze_layers, shape.num_layers
    if n == 0 or abs(n) > total_layers:
        raise ConfigError(f"must be between 1 and {total_layers} (or its negative), got {n}",
                          where="key 'freeze_trainable_layers'")
    layers = set(range(total_layers - n, total_layers)) if n > 0 else set(range(-n))
    modules = [m.lower() for m in plan.freeze_modules]
    count = 0
    for name, size in shape.params:
        in_layer = layer_index(name) in layers and (
            modules == ["all"] or any(f".{m}." in name for m in modules))
        extra = any(f".{e}." in f".{name}" for e in plan.freeze_extra)
        count += size if in_layer or extra else 0
    return count


def weight_bytes(plan: Plan, shape: ModelShape, trainable: int) -> tuple[int, str]:
    """Base weights as loaded (before adapters)."""
    total, wb = shape.total_params, plan.weight_bytes
    if plan.quantization_bit:
        return _quantized_weight_bytes(plan, shape)
    if plan.finetuning_type == "freeze":
        # model.adapters upcasts the trained layers to fp32
        return (total - trainable) * wb + trainable * 4, f"{_count(total)} params, trained part in fp32"
    return total * wb, f"{_count(total)} params x {plan.weight_dtype} ({wb} B)"


def _quantized_weight_bytes(plan: Plan, shape: ModelShape) -> tuple[int, str]:
    linear = shape.linear_weight_params
    # prepare_model_for_kbit_training upcasts what bitsandbytes left unquantized (embeddings,
    # head, norms, biases) to fp32
    rest = (shape.total_params - linear) * 4
    packed = quantized_linear_bytes(shape, plan.quantization_bit, plan.double_quantization)
    detail = (f"{_count(linear)} linear params in {plan.quantization_bit}-bit + constants, "
              f"{_count(shape.total_params - linear)} others in fp32")
    return packed + rest, detail


def optimizer_bytes(plan: Plan, trainable: int, param_bytes: int) -> tuple[int, str]:
    """Optimizer state for the trainable parameters (before ZeRO sharding)."""
    name = plan.optim.lower()
    states = _state_count(name)
    state_bytes = 1 if "8bit" in name else 4 if "32bit" in name else param_bytes
    master = 0
    if plan.zero_stage and param_bytes == 2:
        # DeepSpeed keeps fp32 master weights and fp32 states for half-precision params (and
        # accelerate's FSDP2 upcasts trained half-precision params to fp32 under mixed precision)
        master, state_bytes = 4, 4
    total = trainable * (states * state_bytes + master)
    paged = ", paged (can spill to CPU)" if name.startswith("paged") else ""
    extra = " + fp32 master" if master else ""
    return total, f"{plan.optim}: {states} state(s) x {state_bytes} B{extra}{paged}"


def _state_count(name: str) -> int:
    if name.startswith(("sgd", "lomo", "adalomo")):
        return 0  # TrainingArguments' SGD has no momentum; LOMO fuses the update into backward
    if "adafactor" in name:
        return 0  # factored second moment: rows + columns, negligible next to the weights
    if "lion" in name or "adagrad" in name or "rmsprop" in name:
        return 1
    if "ademamix" in name:
        return 3
    return 2


def price(plan: Plan, shape: ModelShape) -> Priced:
    """Every component of peak memory for ``plan`` on a model of ``shape``."""
    trainable, adapter_params = _trainable(plan, shape)
    weights, weights_how = weight_bytes(plan, shape, trainable)
    adapter, train_bytes = _adapter_and_trainable_bytes(plan, shape, trainable, adapter_params)
    param_bytes = train_bytes // trainable if trainable else 4
    optim, optim_how = optimizer_bytes(plan, trainable, param_bytes)
    targets = set(lora_targets(plan, shape)) if plan.finetuning_type == "lora" else set()
    acts, acts_how = activation_bytes(plan, shape, targets)
    logits, logits_how = logit_bytes(plan, shape)
    reference, reference_how = reference_bytes(plan, shape)
    reward, reward_how = reward_bytes(plan, shape, lora_params(plan, shape))
    generation, generation_how = generation_bytes(plan, shape)
    parts = _shard(plan, {"weights": weights, "adapter": adapter, "reference": reference,
                          "reward_model": reward, "gradients": train_bytes, "optimizer": optim,
                          "generation": generation, "activations": acts, "logits": logits})
    parts["overlap"] = -_overlap(plan, shape, parts)
    parts["overhead"] = _overhead(plan, shape, parts)
    details = {
        "weights": weights_how,
        "adapter": _adapter_detail(plan, adapter_params),
        "reference": reference_how,
        "reward_model": reward_how,
        "generation": generation_how,
        "gradients": f"{_count(trainable)} trainable params x {param_bytes} B",
        "optimizer": optim_how + _zero_detail(plan),
        "activations": acts_how,
        "logits": logits_how,
        "overlap": _overlap_detail(plan),
        "overhead": "CUDA context 0.5 GiB + 5% allocator slack" + _overhead_extra(plan),
    }
    return Priced(parts, details, shape.total_params, trainable)


def _trainable(plan: Plan, shape: ModelShape) -> tuple[int, int]:
    """(trainable params, params that exist only because of the adapter)."""
    if plan.finetuning_type == "lora":
        extra = lora_params(plan, shape) + saved_module_params(plan, shape)
        return extra, extra
    if plan.finetuning_type == "freeze":
        return freeze_trainable(plan, shape), 0
    return shape.total_params, 0


def _adapter_and_trainable_bytes(plan: Plan, shape: ModelShape, trainable: int,
                                 adapter_params: int) -> tuple[int, int]:
    if plan.finetuning_type == "full":
        return 0, trainable * plan.weight_bytes
    if plan.finetuning_type == "freeze":
        return 0, trainable * 4
    # PEFT upcasts adapter weights to fp32; modules_to_save copies keep the base dtype unless a
    # quantized base was upcast by prepare_model_for_kbit_training
    saved = saved_module_params(plan, shape)
    saved_bytes = saved * (4 if plan.quantization_bit else plan.weight_bytes)
    adapter = (adapter_params - saved) * 4 + saved_bytes
    return adapter, adapter


def _shard(plan: Plan, parts: dict[str, int]) -> dict[str, int]:
    """Per-GPU share under DeepSpeed ZeRO (1: optimizer, 2: + gradients, 3: + weights)."""
    n, stage = plan.num_gpus, plan.zero_stage
    if stage >= 1:
        parts["optimizer"] = 0 if plan.offload_optimizer else parts["optimizer"] // n
    if stage >= 2:
        parts["gradients"] //= n
    if stage >= 3:
        parts["weights"] = 0 if plan.offload_params else parts["weights"] // n
        parts["adapter"] //= n
        # TRL prepares frozen models with the same ZeRO-3 config (inference only); the reward
        # model is TuneLab's own scorer, a whole copy on every GPU
        parts["reference"] //= n
    return parts


def _overlap(plan: Plan, shape: ModelShape, parts: dict[str, int]) -> int:
    """Bytes that the plain sum double-counts. With one micro-batch per step, gradients are
    created during backward as activations are freed layer by layer, so the peak holds
    max(activations + logits + head gradient, gradients) rather than their sum. With gradient
    accumulation the previous micro-batch's gradients are alive during the next forward.
    The online stages' generation cache is freed before the training forward: the peak holds the larger of
    it and the forward's tensors."""
    live = parts["activations"] + parts["logits"]
    generation = min(parts["generation"], live)
    if plan.grad_accum > 1 or plan.zero_stage:
        return generation
    head = shape.embedding_params if shape.tied_embeddings else shape.head_params
    head_grad = head * plan.weight_bytes if plan.finetuning_type == "full" else 0
    both = live + parts["gradients"]
    return generation + both - max(live + head_grad, parts["gradients"])


def _overlap_detail(plan: Plan) -> str:
    text = "gradients fill while activations are freed (batch without accumulation)"
    if plan.stage in ONLINE_STAGES:
        text += "; the generation cache is gone before the training forward"
    return text


def _overhead(plan: Plan, shape: ModelShape, parts: dict[str, int]) -> int:
    used = sum(parts.values())
    extra = 0
    if plan.quantization_bit:
        # one linear weight dequantized to the compute dtype at a time, plus its gradient input
        biggest = max((li.in_features * li.out_features for li in shape.linears), default=0)
        extra += 2 * biggest * plan.compute_bytes
    if plan.zero_stage >= 3:
        # the layer being computed and the prefetched next one are gathered in full
        extra += 2 * shape.largest_layer_params * plan.weight_bytes
    if plan.num_gpus > 1 and not plan.zero_stage:
        extra += parts["gradients"]  # DDP's bucket copies of the gradients
    return CUDA_CONTEXT_BYTES + int(ALLOCATOR_SLACK * used) + extra


def _overhead_extra(plan: Plan) -> str:
    text = ""
    if plan.quantization_bit:
        text += " + dequantized weight buffer"
    if plan.zero_stage >= 3:
        text += f" + gathered {sharding_name(plan)} layers"
    if plan.num_gpus > 1 and not plan.zero_stage:
        text += " + DDP gradient buckets"
    return text


def _zero_detail(plan: Plan) -> str:
    if not plan.zero_stage:
        return ""
    where = "offloaded to CPU" if plan.offload_optimizer else f"sharded over {plan.num_gpus} GPU(s)"
    return f", {sharding_name(plan)} {where}"


def sharding_name(plan: Plan) -> str:
    """ZeRO-N, or FSDP's name for the same sharding (full_shard ~ ZeRO-3, shard_grad_op ~ ZeRO-2)."""
    if plan.sharding_engine == "fsdp":
        return "FSDP2 " + ("full_shard" if plan.zero_stage >= 3 else "shard_grad_op")
    return f"ZeRO-{plan.zero_stage}"


def _adapter_detail(plan: Plan, adapter_params: int) -> str:
    if plan.finetuning_type != "lora":
        return f"none ({plan.finetuning_type} trains the base weights)"
    kind = "DoRA" if plan.use_dora else "LoRA"
    saved = f" + {', '.join(plan.additional_target)}" if plan.additional_target else ""
    return f"{kind} r={plan.lora_rank}{saved}: {_count(adapter_params)} params in fp32"
