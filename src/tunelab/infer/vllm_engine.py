"""vLLM backend (``infer_backend: vllm``): the same ChatEngine interface on vLLM's async engine,
which does continuous batching and paged attention itself. Adapters are served as LoRA
requests. Needs a CUDA machine and the ``vllm`` extra; imported only when chosen.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from typing import TYPE_CHECKING, Any, Callable

from tunelab.errors import ConfigError
from tunelab.infer.engine import ChatEngine, Prepared
from tunelab.infer.loading import base_model_name, served_models

if TYPE_CHECKING:
    from tunelab.config.schema import Config


def require_vllm() -> None:
    """ConfigError, before anything loads, when vLLM cannot run here."""
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError("infer_backend: vllm needs the vllm package, which is not installed",
                          where="key 'infer_backend'",
                          hint="pip install 'tunelab[vllm]' on a CUDA machine, or use "
                               "infer_backend: huggingface (works everywhere, batches requests too)")


class VllmChatEngine(ChatEngine):
    """Chat engine on ``vllm.AsyncLLMEngine``, driven from its own event-loop thread."""

    def __init__(self, cfg: "Config"):
        require_vllm()
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        from tunelab.model.loader import resolve_model_path

        base_path = resolve_model_path(base_model_name(cfg))
        super().__init__(cfg, served_models(cfg, base_path))
        args = AsyncEngineArgs(model=base_path, dtype=_vllm_dtype(cfg.model.torch_dtype),
                               max_model_len=cfg.infer.vllm_maxlen,
                               gpu_memory_utilization=cfg.infer.vllm_gpu_util,
                               enforce_eager=cfg.infer.vllm_enforce_eager,
                               trust_remote_code=cfg.model.trust_remote_code,
                               enable_lora=any(m.adapter for m in self.served),
                               max_lora_rank=cfg.infer.vllm_max_lora_rank,
                               max_loras=max(1, len(self.served) - 1))
        self.context_length = cfg.infer.vllm_maxlen
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tunelab-vllm", daemon=True)
        self.thread.start()
        self.engine = AsyncLLMEngine.from_engine_args(args)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    def _submit(self, prepared: Prepared, sink: Callable[[tuple], None]) -> Callable[[], None]:
        futures = [asyncio.run_coroutine_threadsafe(self._generate(prepared, index, sink), self.loop)
                   for index in range(len(prepared.params))]
        return lambda: [future.cancel() for future in futures]

    async def _generate(self, prepared: Prepared, index: int, sink: Callable[[tuple], None]) -> None:
        import uuid

        from vllm import TokensPrompt

        request_id = uuid.uuid4().hex
        sent, finish, tokens = "", None, 0
        try:
            stream = self.engine.generate(TokensPrompt(prompt_token_ids=prepared.prompt_ids),
                                          self._sampling(prepared, index), request_id,
                                          lora_request=self._lora(prepared))
            async for output in stream:
                piece = output.outputs[0]
                if len(piece.text) > len(sent):
                    sink((index, ("text", piece.text[len(sent):])))
                    sent = piece.text
                finish, tokens = piece.finish_reason, len(piece.token_ids)
            sink((index, ("done", "length" if finish == "length" else "stop", tokens)))
        except asyncio.CancelledError:
            await self.engine.abort(request_id)
            raise
        except Exception as exc:  # reported to the caller like any other request failure
            sink((index, ("error", exc)))

    def _sampling(self, prepared: Prepared, index: int) -> Any:
        from vllm import SamplingParams as VllmSampling

        params = prepared.params[index]
        return VllmSampling(max_tokens=prepared.max_new_tokens,
                            temperature=0.0 if params.greedy else params.temperature,
                            top_p=params.top_p, top_k=params.top_k or -1,
                            repetition_penalty=params.repetition_penalty, seed=params.seed,
                            stop=list(params.stop), stop_token_ids=sorted(prepared.served.stop_ids),
                            skip_special_tokens=False)

    def _lora(self, prepared: Prepared) -> Any:
        served = prepared.served
        if served.adapter is None:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest(served.name, self.served.index(served), served.source)


def _vllm_dtype(torch_dtype: str) -> str:
    return "auto" if torch_dtype == "auto" else torch_dtype
