"""Activation and logit memory of one training step: the tensors autograd keeps for backward.

The per-layer count follows what a Llama-style decoder layer saves under SDPA / flash attention,
as measured with ``torch.autograd.graph.saved_tensors_hooks`` on the bench model (BENCHMARKS.md,
"Memory estimate"): both RMSNorms compute in fp32 and keep their fp32 input (a copy when the
model is half precision) and, when their weights train, the normalized input; attention keeps
rotated q and k, v, its output (o_proj reads a view of it) and the log-sum-exp; the MLP keeps
gate, up and act(gate). Which linear inputs are kept depends on what trains:

- base weights that train keep each distinct input once (q/k/v share one, gate/up share one);
- frozen base weights keep nothing; a LoRA target keeps its input for its ``lora_A`` gradient.
  PEFT's adapters are fp32: in a half-precision model each target first casts its input to fp32,
  so every target keeps its own fp32 copy (q, k and v: three copies); under autocast (bf16/fp16
  mixed precision) that copy is cast back and kept in half precision. In an fp32 model the cast
  is a no-op and targets that share an input share it. LoRA dropout keeps a dropped copy (and a
  one-byte mask) per target.

Not measured: fp32 weights under autocast (autocast also keeps a half copy of each frozen weight
it casts), quantized bases, and architectures with other layer layouts.
"""

from __future__ import annotations

from tunelab.estimate.plan import Plan
from tunelab.estimate.shape import ModelShape

LOGIT_BYTES_PER_ENTRY = 12  # fp32 logits (upcast) + fp32 log-softmax + its fp32 gradient
LOSS_CHUNK_TOKENS = 1024  # tunelab.train.loss.chunked_loss_sum's default chunk
# dpo, kto, grpo and rloo score tokens through TRL's fused LM head (trl.kernels.chunked_logprob), in
# tiles of at most this many tokens x vocabulary entries; the full logits never exist
FUSED_HEAD_STAGES = ("dpo", "kto", "grpo", "rloo")
TRL_TOKEN_TILE, TRL_VOCAB_TILE = 4096, 32768
ADAPTER_BYTES = 4  # PEFT keeps adapter weights in fp32
# Linears that read the same tensor (Llama naming); o_proj reads a view of the attention output.
SHARED_INPUTS = {"q_proj": "attention input", "k_proj": "attention input", "v_proj": "attention input",
                 "gate_proj": "mlp input", "up_proj": "mlp input", "o_proj": "attention output"}
VIEW_INPUTS = ("attention output",)


def activation_layers(plan: Plan, shape: ModelShape) -> int:
    """Decoder layers whose activations autograd keeps: those between the loss and the lowest
    trainable parameter. Only freeze (last N layers, no checkpointing) stops early."""
    if plan.finetuning_type != "freeze" or plan.gradient_checkpointing or plan.freeze_extra:
        return shape.num_layers
    return plan.freeze_layers if plan.freeze_layers > 0 else shape.num_layers


def layer_saved_bytes(plan: Plan, shape: ModelShape, lora_targets: set[str]) -> int:
    """Bytes per token that one decoder layer keeps for backward (see the module docstring)."""
    cb, h, i = plan.compute_bytes, shape.hidden_size, shape.intermediate_size
    base_trains = plan.finetuning_type != "lora"
    norms = 2 * h * 4 + (2 * h * cb if base_trains else 0)
    attention = (2 * shape.q_dim + 2 * shape.kv_dim) * cb + 4 * shape.num_heads
    mlp = 3 * i * cb
    if base_trains:
        inputs = _shared_input_bytes(shape, None, cb)
    else:
        inputs = _lora_input_bytes(plan, shape, lora_targets)
    return norms + attention + mlp + inputs


def _layer_linears(shape: ModelShape) -> list:
    first = next((li.layer for li in shape.linears if li.layer is not None), None)
    return [li for li in shape.linears if li.layer == first]


def _shared_input_bytes(shape: ModelShape, only: set[str] | None, cb: int) -> int:
    """Each distinct input of the layer's linears (or of ``only`` those) once, in ``cb`` bytes."""
    seen: dict[str, int] = {}
    for li in _layer_linears(shape):
        if only is None or li.short in only:
            seen.setdefault(SHARED_INPUTS.get(li.short, li.short), li.in_features)
    return sum(size * cb for group, size in seen.items() if group not in VIEW_INPUTS)


def _lora_input_bytes(plan: Plan, shape: ModelShape, targets: set[str]) -> int:
    layer = [li for li in _layer_linears(shape) if li.short in targets]
    # under autocast lora_A runs in half precision and keeps a half copy; without it, fp32
    copy = 2 if plan.mixed_precision else ADAPTER_BYTES
    rank_outputs = sum(plan.lora_rank * copy for _ in layer)
    if plan.lora_dropout > 0:
        # dropout(x) is a new tensor per target: a copy plus a one-byte mask each
        return rank_outputs + sum(li.in_features * (copy + 1) for li in layer)
    if plan.compute_bytes == ADAPTER_BYTES:
        # fp32 throughout: the cast is a no-op, so targets that share an input share it
        return rank_outputs + _shared_input_bytes(shape, targets, plan.compute_bytes)
    # half-precision inputs: each target makes its own copy (fp32, or half again under autocast)
    return rank_outputs + sum(li.in_features * copy for li in layer)


def activation_bytes(plan: Plan, shape: ModelShape, lora_targets: set[str]) -> tuple[int, str]:
    """Saved activations of one micro-batch on one device, and a one-line explanation."""
    cb, tokens, h = plan.compute_bytes, plan.tokens, shape.hidden_size
    per_token = layer_saved_bytes(plan, shape, lora_targets)
    per_layer = per_token * tokens
    # eager attention keeps the fp32 softmax and its half-precision copy: heads x seq^2 per row
    eager = plan.rows * shape.num_heads * plan.seq_len**2 * (4 + cb) if plan.attention == "eager" else 0
    outside = 5 * h * tokens * cb  # embedding output, final norm, head input
    if plan.gradient_checkpointing:
        # layer inputs are kept (in CPU RAM when offloaded); one layer at a time is recomputed
        # in full during backward
        inputs = 0 if plan.offload_activations else shape.num_layers * h * tokens * cb
        total = inputs + per_layer + eager + outside
        kept = "in CPU RAM" if plan.offload_activations else "kept"
        how = f"checkpointed: {shape.num_layers} layer inputs {kept} + 1 layer recomputed"
    else:
        layers = activation_layers(plan, shape)
        total = layers * (per_layer + eager) + outside
        how = f"{layers} layers x {per_token:,} B/token"
    attn = "eager attention (seq^2 scores)" if eager else f"{plan.attention} attention"
    return total, f"{_sequences_text(plan)}, {how}, {attn}"


def _sequences_text(plan: Plan) -> str:
    if plan.sequences == 1:
        return f"{plan.batch_size} x {plan.seq_len} tokens"
    what = "chosen + rejected" if plan.stage in ("rm", "dpo") else "generations"
    return f"{plan.batch_size} rows x {plan.sequences} ({what}) x {plan.seq_len} tokens"


def logit_tokens(plan: Plan) -> int:
    """Tokens whose logits are alive at once: one loss chunk with the chunked loss (single
    process, DDP and FSDP alike) or Liger's fused cross-entropy, else all (``Plan.own_loss``).
    The chunked loss is pt's and sft's; the TRL stages compute their own log-probs."""
    if plan.own_loss or plan.stage not in ("pt", "sft"):
        return plan.tokens
    return min(plan.tokens, LOSS_CHUNK_TOKENS)


def logit_bytes(plan: Plan, shape: ModelShape) -> tuple[int, str]:
    if plan.stage == "rm":
        return 0, "score head: one value per sequence, no vocabulary logits"
    if plan.stage in FUSED_HEAD_STAGES:
        tokens, vocab = min(plan.tokens, TRL_TOKEN_TILE), min(shape.vocab_size, TRL_VOCAB_TILE)
        per_entry = plan.compute_bytes + 8
        return (tokens * vocab * per_entry,
                f"TRL's fused log-prob head: one tile of {tokens:,} tokens x {vocab:,} vocab x "
                f"{per_entry} B (the tile and its fp32 working copies)")
    tokens = logit_tokens(plan)
    how = "one loss chunk of " if tokens < plan.tokens else ""
    return (tokens * shape.vocab_size * LOGIT_BYTES_PER_ENTRY,
            f"{how}{tokens:,} tokens x {shape.vocab_size:,} vocab x {LOGIT_BYTES_PER_ENTRY} B "
            "(fp32 logits, log-softmax and its gradient)")
