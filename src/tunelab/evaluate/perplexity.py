"""Loss and perplexity of a model, or of a run's adapter, on registered datasets.

The samples are encoded by the training pipeline (``prepare_datasets``: same template, masks,
cutoff and placeholders), so the figure is the training loss measured on other data: the mean
cross-entropy over the tokens training would have scored, and perplexity = exp(that loss).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from tunelab.errors import DataError
from tunelab.evaluate.loading import load_scored_model, model_source, training_tokenizer
from tunelab.evaluate.progress import Progress

if TYPE_CHECKING:
    from tunelab.config.schema import Config


@dataclass
class PerplexityResult:
    """What was scored and how it scored."""

    model: str
    adapters: list[str]
    datasets: list[str]
    samples: int
    tokens: int
    loss: float
    perplexity: float
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        what = self.model + (f" + {', '.join(self.adapters)}" if self.adapters else "")
        return (f"{what} on {', '.join(self.datasets)}: loss {self.loss:.4f}, perplexity "
                f"{self.perplexity:.3f} over {self.tokens} scored tokens in {self.samples} samples")

    def metrics(self) -> dict[str, float]:
        return {"loss": self.loss, "perplexity": self.perplexity, "tokens": self.tokens}


def perplexity(cfg: "Config", log: Callable[[str], None] = lambda line: None) -> PerplexityResult:
    """Mean token loss and perplexity of the recipe's model (+ adapters) on its ``dataset``.

    Every sample is scored whole (no packing, no held-out split); the loss is averaged over all
    labelled tokens of all samples, so long samples weigh by their length, as in training.
    Raises ConfigError / DataError / ModelError naming the bad key, dataset or folder.
    """
    from tunelab.data.pipeline import prepare_datasets

    model_name, adapters = model_source(cfg)
    tokenizer = training_tokenizer(cfg, adapters)
    cfg.sections["data"] = dataclasses.replace(cfg.data, val_size=0.0, packing=False)
    log(f"encoding {', '.join(cfg.data.dataset)} with the training pipeline")
    prepared = prepare_datasets(cfg, tokenizer, cfg.method.stage)
    log(f"loading {model_name}" + (f" with {', '.join(adapters)}" if adapters else ""))
    model = load_scored_model(cfg, model_name, adapters)
    batch_size = int(cfg.training_value("per_device_eval_batch_size") or 8)
    total, count = _score(model, prepared.train, tokenizer.pad_token_id, batch_size, log)
    if count == 0:
        raise DataError("no sample has a labelled token to score", where=f"dataset {cfg.data.dataset}",
                        hint="raise cutoff_len, or use train_on_prompt: true for prompt-only rows")
    loss = total / count
    return PerplexityResult(model=model_name, adapters=adapters, datasets=list(cfg.data.dataset),
                            samples=len(prepared.train), tokens=count, loss=loss,
                            perplexity=math.exp(loss), notes=list(cfg.notes))


def _score(model: Any, rows: Any, pad_token_id: int, batch_size: int,
           log: Callable[[str], None]) -> tuple[float, int]:
    """(summed token loss, scored tokens) over ``rows``, ``batch_size`` samples at a time in
    training's padding-free batches (one row, positions restarting per sample: no pad token)."""
    import torch

    from tunelab.data.collate import PackedCollator
    from tunelab.data.encode import IGNORE_INDEX

    collate = PackedCollator(pad_token_id, flatten=True)
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with Progress(len(rows), "perplexity", "samples", log) as bar:
        for start in range(0, len(rows), batch_size):
            chunk = [rows[i] for i in range(start, min(start + batch_size, len(rows)))]
            batch = {k: v.to(device) if hasattr(v, "to") else v for k, v in collate(chunk).items()}
            # The model shifts labels by one; the collator ignores each sample's first label.
            n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            if n:
                with torch.inference_mode():
                    loss = model(**batch).loss  # HF's mean over this batch's scored tokens
                total += float(loss) * n
                count += n
            bar.update(len(chunk))
    return total, count
