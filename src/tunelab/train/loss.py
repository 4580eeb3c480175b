"""Causal-LM loss without the full logits tensor.

Hugging Face models compute ``lm_head`` for every position and keep the float logits (tokens x
vocab) alive for the backward pass. Here the head runs only on positions that carry a label,
in chunks whose logits are recomputed during backward instead of stored: the same loss and
gradients, a fraction of the memory, and less head compute on prompt tokens.

The loss runs inside the model's own call (``install_chunked_loss`` gives the causal LM a second
forward mode), so DDP's gradient hooks and FSDP2's all-gathers that wrap that call apply to it
as they apply to the model's own loss: single-process, DDP and FSDP runs share this code path.

Why not TRL's fused LM head (``trl.trainer.utils.add_fused_lm_head``), which does the same with
Triton kernels on GPU? TRL is an optional extra (the ``rl`` stages), and on CPU its torch
fallback projects every position, prompt tokens included: measured on the CPU bench model
(BENCHMARKS.md, "Chunked loss") it was slower than this one. DeepSpeed keeps the model's own
loss (its ZeRO-3 hooks around a recomputed head are not verified here), as does Liger, whose
fused linear cross-entropy replaces the model's forward.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from transformers import Trainer
from transformers.modeling_outputs import CausalLMOutputWithPast

IGNORE_INDEX = -100
# Configs whose logits are not simply lm_head(hidden): those keep the model's own loss.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier")


def causal_lm_parts(model: Any) -> tuple[Any, Any] | None:
    """(decoder body, output head) of a causal LM (PEFT-wrapped or not), or None when the
    model's logits need more than the head (soft-capping, scaling) or its layout is unknown."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(inner, "config", None)
    if config is None or any(getattr(config, key, None) not in (None, 1, 1.0) for key in _LOGIT_TRANSFORMS):
        return None
    body = getattr(inner, getattr(inner, "base_model_prefix", "model"), None)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if body is None or head is None or body is inner:
        return None
    return body, head


def _chunk_loss_sum(hidden: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor,
                    bias: torch.Tensor | None) -> torch.Tensor:
    return F.cross_entropy(F.linear(hidden, weight, bias).float(), targets, reduction="sum")


def _module_chunk_loss_sum(hidden: torch.Tensor, targets: torch.Tensor, head: Any) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), targets, reduction="sum")


def head_projection(head: Any) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(weight, bias) the head multiplies by, or None when it is more than one linear map (a
    LoRA adapter on the head itself). PEFT's modules_to_save copy answers with the trained
    weight. An FSDP2-sharded weight is gathered once here, so every process runs the same
    collectives however many chunks its batch has (calling the head module once per chunk
    would not)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    if isinstance(head, BaseTunerLayer) or not isinstance(getattr(head, "weight", None), torch.Tensor):
        return None
    weight, bias = head.weight, getattr(head, "bias", None)
    if hasattr(weight, "full_tensor"):  # a DTensor
        weight = weight.full_tensor()
        bias = bias.full_tensor() if bias is not None else None
    return weight, bias


def chunked_loss_sum(hidden: torch.Tensor, labels: torch.Tensor, head: Any,
                     chunk_tokens: int = 1024) -> tuple[torch.Tensor, int]:
    """(sum of next-token cross-entropy over labelled positions, their count)."""
    targets = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX).reshape(-1)
    keep = targets != IGNORE_INDEX
    hidden = hidden.reshape(-1, hidden.shape[-1])[keep]
    targets = targets[keep]
    # One call of the head module, on no tokens: the hooks that wrap it (FSDP2 unsharding its
    # weight and reducing its gradient) run once, as for the model's own loss.
    head(hidden[:0])
    projection = head_projection(head)
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, targets.numel(), chunk_tokens):
        piece = slice(start, start + chunk_tokens)
        if projection is None:
            part = checkpoint(_module_chunk_loss_sum, hidden[piece], targets[piece], head,
                              use_reentrant=False)
        else:
            part = checkpoint(_chunk_loss_sum, hidden[piece], targets[piece], *projection,
                              use_reentrant=False)
        total = total + part
    return total, int(targets.numel())


def _inner_model(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def install_chunked_loss(model: Any) -> bool:
    """Let the causal LM inside ``model`` (PEFT-wrapped or not) be called with
    ``tunelab_chunked_loss=True`` and labels: it then returns, as ``loss``, the sum of the
    chunked next-token loss over labelled positions, without logits. Without the flag the
    forward is the model's own. False when the model's logits need more than its head."""
    if causal_lm_parts(model) is None:
        return False
    inner = _inner_model(model)
    if getattr(inner, "_tunelab_chunked_loss", False):
        return True
    original = inner.forward

    @functools.wraps(type(inner).forward)
    def forward(self: Any, *args: Any, tunelab_chunked_loss: bool = False, **kwargs: Any) -> Any:
        if not tunelab_chunked_loss:
            return original(*args, **kwargs)
        labels = kwargs.pop("labels")
        kwargs.pop("num_items_in_batch", None)
        # looked up on each call: FSDP and PEFT may replace modules after installing
        body, head = causal_lm_parts(self)
        hidden = body(*args, **kwargs).last_hidden_state
        total, _ = chunked_loss_sum(hidden, labels, head)
        return CausalLMOutputWithPast(loss=total)

    inner.forward = types.MethodType(forward, inner)
    inner._tunelab_chunked_loss = True
    return True


class ChunkedLossTrainer(Trainer):
    """Trainer whose training loss skips the full logits tensor (see the module docstring).

    Evaluation without predictions (``prediction_loss_only``, the Trainer's choice when no
    ``compute_metrics`` is set) scores the same way, on the same padding-free batches as
    training. Falls back to the model's own loss when outputs are needed (evaluation with
    predictions), under DeepSpeed or Liger kernels, and when the model's logits are more than
    ``lm_head(hidden)``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        own_loss = self.is_deepspeed_enabled or self.args.use_liger_kernel
        self.chunked = not own_loss and install_chunked_loss(self.model)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        if not prediction_loss_only or "labels" not in inputs:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if return_outputs or "labels" not in inputs or not self.chunked:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        # Called through `model` (the DDP/FSDP-wrapped one): its hooks and autocast apply.
        total = model(**inputs, tunelab_chunked_loss=True).loss
        # Same reduction as transformers' causal-LM loss: over the whole accumulated batch when
        # the Trainer counted it (across processes too), else over this micro-batch.
        if num_items_in_batch is None:
            return total / max(int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum()), 1)
        denominator = num_items_in_batch.to(total.device) if torch.is_tensor(num_items_in_batch) \
            else num_items_in_batch
        loss = total / denominator
        if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
            # the count covers every process, and DDP/FSDP average gradients over processes
            loss = loss * self.accelerator.num_processes
        return loss
