"""Hugging Face backend: one model in memory, concurrent requests decoded in shared batches.

``batching: continuous`` (the default, ``continuous.py``): a request joins the running batch at
the next decoding step and leaves it when it ends. ``batching: dynamic`` (``batching.py``): rows
that arrive within ``batch_wait_ms`` share one left-padded ``generate`` call; models whose cache
cannot be re-batched (sliding-window, static or linear-attention caches) always use it. Rows for
different adapters share a batch through PEFT's mixed-batch ``adapter_names``. Each row samples
with its own generator and stops on its own (``rows.py``), so batching changes speed, not answers.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

from tunelab.errors import ModelError
from tunelab.estimate.advice import is_oom_error
from tunelab.infer.batching import BatchScheduler
from tunelab.infer.continuous import ContinuousScheduler
from tunelab.infer.decode import Decoder, supports_continuous
from tunelab.infer.engine import ChatEngine, Prepared
from tunelab.infer.loading import (
    attach_adapters,
    base_model_name,
    check_memory,
    served_models,
)
from tunelab.infer.rows import Row, RowSampler, RowStopper

log = logging.getLogger(__name__)
from tunelab.model.loader import pick_device

if TYPE_CHECKING:
    from tunelab.config.schema import Config


class HfChatEngine(ChatEngine):
    """Chat engine on a Hugging Face model (plus PEFT adapters), on CPU or one GPU."""

    def __init__(self, cfg: "Config"):
        from tunelab.model.loader import load_model, pick_dtype, resolve_model_path

        base_name = base_model_name(cfg)
        base_path = resolve_model_path(base_name)
        self.device = pick_device(cfg.infer.infer_device)
        check_memory(base_path, pick_dtype(cfg.model.torch_dtype), self.device,
                     cfg.model.quantization_bit is not None)
        super().__init__(cfg, served_models(cfg, base_path))
        model_args = replace(cfg.model, model_name_or_path=base_name)
        try:
            model = load_model(model_args, device=self.device)
        except (RuntimeError, MemoryError) as exc:
            if not is_oom_error(exc):
                raise
            raise ModelError(f"out of memory loading the model on {self.device}",
                             where=f"model {base_path}",
                             hint="use torch_dtype: bfloat16, quantization_bit: 4, or a smaller "
                                  "model") from None
        if cfg.model.quantization_bit == 4 and self.device == "cpu":
            _fit_cpu_4bit_kernel(model)
        self.model = attach_adapters(model, self.served).eval()
        self.mixed = any(m.adapter for m in self.served)
        self.context_length = getattr(self.model.config, "max_position_embeddings", None)
        self.pad_id = self.served[0].tokenizer.pad_token_id
        self.scheduler = self._scheduler(cfg)

    def _scheduler(self, cfg: "Config") -> BatchScheduler | ContinuousScheduler:
        args = cfg.infer
        sizes = (args.max_batch_size, args.batch_wait_ms / 1000.0, args.batch_slice_tokens)
        self.batching = args.batching
        if args.batching == "continuous" and not supports_continuous(self.model):
            log.warning("batching: continuous needs a model with a plain full-attention cache; "
                        "%s falls back to dynamic batching", type(self.model.config).__name__)
            self.batching = "dynamic"
        if self.batching == "continuous":
            return ContinuousScheduler(Decoder(self.model, self.pad_id, self.mixed), self._run_batch, *sizes)
        return BatchScheduler(self._run_batch, *sizes)

    @property
    def batch_stats(self) -> dict[str, int]:
        return dict(self.scheduler.stats)

    def close(self) -> None:
        self.scheduler.close()

    def _submit(self, prepared: Prepared, sink: Callable[[tuple], None]) -> Callable[[], None]:
        tokenizer = prepared.served.tokenizer
        stop_ids = prepared.served.stop_ids | self._eos_ids()
        rows = [Row(prompt_ids=prepared.prompt_ids, params=params,
                    emit=_tagged(sink, index), stop_ids=stop_ids,
                    decode=lambda ids, tok=tokenizer: tok.decode(ids, skip_special_tokens=False),
                    adapter=prepared.served.adapter, model=prepared.served.name,
                    max_new_tokens=prepared.max_new_tokens)
                for index, params in enumerate(prepared.params)]
        self.scheduler.submit(rows)

        def cancel() -> None:
            for row in rows:
                row.cancelled = True
        return cancel

    def _eos_ids(self) -> set[int]:
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        if eos is None:
            return set()
        return set(eos) if isinstance(eos, (list, tuple)) else {eos}

    def _run_batch(self, rows: list[Row]) -> None:
        """One left-padded ``generate`` for every row (continuing rows resume from their answer
        so far); rows stream and stop on their own, and the call yields to waiting rows."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        input_ids, attention_mask = self._left_pad([row.context_ids for row in rows])
        config = GenerationConfig(max_new_tokens=max(row.remaining for row in rows),
                                  do_sample=False, num_beams=1, pad_token_id=self.pad_id,
                                  eos_token_id=sorted(set().union(*(row.stop_ids for row in rows))))
        kwargs: dict[str, Any] = {}
        if self.mixed:
            kwargs["adapter_names"] = [row.adapter or "__base__" for row in rows]
        with torch.inference_mode():
            self.model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                generation_config=config,
                                logits_processor=LogitsProcessorList([RowSampler(rows)]),
                                stopping_criteria=StoppingCriteriaList(
                                    [RowStopper(rows, self.scheduler.should_yield)]), **kwargs)

    def _left_pad(self, prompts: list[list[int]]) -> tuple[Any, Any]:
        import torch

        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            mask[i, width - len(prompt):] = 1
        return ids.to(self.model.device), mask.to(self.model.device)


def _fit_cpu_4bit_kernel(model: Any) -> None:
    """Let every 4-bit layer run on CPU. bitsandbytes' fast CPU kernel (AVX512-BF16) repacks a
    weight in blocks of 32 output rows and of one quantization block of inputs, and fails on other
    shapes (the tiny models' 176-wide MLP: "N must be divisible by block_n"); such layers keep
    the generic 4-bit CPU path instead."""
    import bitsandbytes as bnb

    for module in model.modules():
        if not isinstance(module, bnb.nn.Linear4bit):
            continue
        state = getattr(module.weight, "quant_state", None)
        block = getattr(state, "blocksize", 64) or 64
        if module.out_features % 32 or module.in_features % block:
            module.support_avx512bf16_for_cpu = False


def _tagged(sink: Callable[[tuple], None], index: int) -> Callable[[tuple], None]:
    return lambda event: sink((index, event))
