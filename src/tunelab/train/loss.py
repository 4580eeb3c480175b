"""Causal-LM loss without the full logits tensor.

Hugging Face models compute ``lm_head`` for every position and keep the float logits (tokens x
vocab) alive for the backward pass. Here the head runs only on positions that carry a label,
in chunks whose logits are recomputed during backward instead of stored: the same loss and
gradients, a fraction of the memory, and less head compute on prompt tokens.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from transformers import Trainer

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


def _chunk_loss_sum(hidden: torch.Tensor, targets: torch.Tensor, head: Any) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), targets, reduction="sum")


def chunked_loss_sum(hidden: torch.Tensor, labels: torch.Tensor, head: Any,
                     chunk_tokens: int = 1024) -> tuple[torch.Tensor, int]:
    """(sum of next-token cross-entropy over labelled positions, their count)."""
    targets = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX).reshape(-1)
    keep = targets != IGNORE_INDEX
    hidden = hidden.reshape(-1, hidden.shape[-1])[keep]
    targets = targets[keep]
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, targets.numel(), chunk_tokens):
        piece = slice(start, start + chunk_tokens)
        total = total + checkpoint(_chunk_loss_sum, hidden[piece], targets[piece], head,
                                   use_reentrant=False)
    return total, int(targets.numel())


class ChunkedLossTrainer(Trainer):
    """Trainer whose training loss skips the full logits tensor (see the module docstring).

    Evaluation without predictions (``prediction_loss_only``, the Trainer's choice when no
    ``compute_metrics`` is set) scores the same way, on the same padding-free batches as
    training. Falls back to the model's own loss when outputs are needed (evaluation with
    predictions), when the model is wrapped for distributed training (DDP must see its own
    forward), or when the model's logits are more than ``lm_head(hidden)``.
    """

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        if not prediction_loss_only or "labels" not in inputs:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        parts = None if return_outputs or "labels" not in inputs else causal_lm_parts(model)
        if parts is None or self.accelerator.unwrap_model(model) is not model:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        body, head = parts
        features = {k: v for k, v in inputs.items() if k != "labels"}
        # Calling the body and head directly bypasses the autocast accelerate wraps around
        # model.forward (bf16/fp16 on fp32 weights), so enter the same context here; the
        # cross-entropy still runs on fp32 logits (see _chunk_loss_sum).
        with self.accelerator.autocast():
            hidden = body(**features).last_hidden_state
            total, count = chunked_loss_sum(hidden, inputs["labels"], head)
        # Same reduction as transformers' causal-LM loss: over the whole accumulated batch when
        # the Trainer counted it, else over this micro-batch.
        denominator = num_items_in_batch if num_items_in_batch is not None else max(count, 1)
        if torch.is_tensor(denominator):
            denominator = denominator.to(total.device)
        return total / denominator
