"""Loss and perplexity of a model, or of a run's adapter, on registered datasets.

The samples are encoded by the training pipeline (``prepare_datasets``: same template, masks,
cutoff and placeholders), so the figure is the training loss measured on other data: the mean
cross-entropy over the tokens training would have scored, and perplexity = exp(that loss).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tunelab.errors import ConfigError, DataError

if TYPE_CHECKING:
    from tunelab.config.schema import Config

# Recipe keys that change how a sample is encoded: a run's own values are the default when
# evaluating it, so its loss is measured on data encoded as it was trained on.
RUN_ENCODING_KEYS = ("stage", "template", "cutoff_len", "train_on_prompt", "mask_history",
                     "enable_thinking", "default_system", "placeholders")


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


def run_encoding_options(folder: str | Path) -> dict[str, Any]:
    """The encoding keys a run was trained with (from its manifest; {} for a non-run folder)."""
    from tunelab.runs import RunDir

    path = Path(folder)
    for candidate in (path, path.parent):  # a checkpoint-N folder belongs to its parent run
        manifest = RunDir(candidate).read_manifest()
        if manifest:
            given = manifest.get("config_given") or {}
            return {k: given[k] for k in RUN_ENCODING_KEYS if given.get(k) is not None}
    return {}


def evaluation_config(model: str | None, adapters: list[str] | None, datasets: list[str],
                      keys: dict[str, Any] | None = None) -> "Config":
    """A validated recipe for scoring ``model`` (+ ``adapters``) on ``datasets``.

    The last adapter's run (or the model's, for a full run) supplies the encoding keys it was
    trained with; ``keys`` (any recipe key, e.g. dataset_dir, max_samples) override them.
    """
    from tunelab.config import load_config

    if not datasets:
        raise ConfigError("no dataset chosen to evaluate on", where="key 'dataset'",
                          hint="pick one or more datasets from dataset_info.json, e.g. identity")
    adapters = list(adapters or [])
    trained_on = adapters[-1] if adapters else model
    raw: dict[str, Any] = run_encoding_options(trained_on) if trained_on else {}
    raw.update({k: v for k, v in (keys or {}).items() if v is not None})
    raw.update(dataset=",".join(datasets), val_size=0, packing=False)
    if model:
        raw["model_name_or_path"] = model
    if adapters:
        raw["adapter_name_or_path"] = ",".join(adapters)
    return load_config(None, raw)


def perplexity(cfg: "Config", log: Callable[[str], None] = lambda line: None) -> PerplexityResult:
    """Mean token loss and perplexity of the recipe's model (+ adapters) on its ``dataset``.

    Every sample is scored whole (no packing, no held-out split); the loss is averaged over all
    labelled tokens of all samples, so long samples weigh by their length, as in training.
    Raises ConfigError / DataError / ModelError naming the bad key, dataset or folder.
    """
    from tunelab.data.pipeline import prepare_datasets

    model_name, adapters = _source(cfg)
    tokenizer = _tokenizer(cfg, adapters)
    cfg.sections["data"] = dataclasses.replace(cfg.data, val_size=0.0, packing=False)
    log(f"encoding {', '.join(cfg.data.dataset)} with the training pipeline")
    prepared = prepare_datasets(cfg, tokenizer, cfg.method.stage)
    log(f"loading {model_name}" + (f" with {', '.join(adapters)}" if adapters else ""))
    model = _load(cfg, model_name, adapters)
    batch_size = int(cfg.training_value("per_device_eval_batch_size") or 8)
    total, count = _score(model, prepared.train, tokenizer.pad_token_id, batch_size)
    if count == 0:
        raise DataError("no sample has a labelled token to score", where=f"dataset {cfg.data.dataset}",
                        hint="raise cutoff_len, or use train_on_prompt: true for prompt-only rows")
    loss = total / count
    return PerplexityResult(model=model_name, adapters=adapters, datasets=list(cfg.data.dataset),
                            samples=len(prepared.train), tokens=count, loss=loss,
                            perplexity=math.exp(loss), notes=list(cfg.notes))


def _source(cfg: "Config") -> tuple[str, list[str]]:
    """(base model name, adapters); a model path that holds only an adapter counts as an adapter."""
    from tunelab.infer.loading import base_model_name
    from tunelab.model import check_adapter_dir

    model = cfg.model.model_name_or_path
    adapters = list(cfg.model.adapter_name_or_path or [])
    if model and (Path(model) / "adapter_config.json").is_file() and not (Path(model) / "config.json").is_file():
        adapters = [model, *adapters]
        cfg.sections["model"] = dataclasses.replace(cfg.model, model_name_or_path=None,
                                                    adapter_name_or_path=adapters)
    for adapter in adapters:
        check_adapter_dir(adapter)
    return base_model_name(cfg), adapters


def _tokenizer(cfg: "Config", adapters: list[str]) -> Any:
    """The tokenizer the model trained with: the last adapter's run saved it, template included."""
    from tunelab.infer.loading import adapter_tokenizer_dir, base_model_name
    from tunelab.model import load_tokenizer

    own = adapter_tokenizer_dir(adapters[-1]) if adapters else None
    path = str(own) if own else base_model_name(cfg)
    return load_tokenizer(dataclasses.replace(cfg.model, model_name_or_path=path))


def _load(cfg: "Config", model_name: str, adapters: list[str]) -> Any:
    """The base on the inference device; earlier adapters merged in, the last one attached."""
    from tunelab.model.loader import pick_device
    from tunelab.model import load_model

    model_args = dataclasses.replace(cfg.model, model_name_or_path=model_name, adapter_name_or_path=None)
    model = load_model(model_args, device=pick_device(cfg.infer.infer_device))
    if adapters:
        from peft import PeftModel

        for adapter in adapters[:-1]:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        model = PeftModel.from_pretrained(model, adapters[-1])
    return model.eval()


def _score(model: Any, rows: Any, pad_token_id: int, batch_size: int) -> tuple[float, int]:
    """(summed token loss, scored tokens) over ``rows``, in right-padded batches."""
    import torch

    from tunelab.data.collate import PaddingCollator
    from tunelab.data.encode import IGNORE_INDEX

    collate = PaddingCollator(pad_token_id)
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = collate([rows[i] for i in range(start, min(start + batch_size, len(rows)))])
        batch = {k: v.to(device) for k, v in batch.items()}
        # The model shifts labels by one: the first label of a row is never a target.
        n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        if n == 0:
            continue
        with torch.inference_mode():
            loss = model(**batch).loss  # HF's mean over this batch's scored tokens
        total += float(loss) * n
        count += n
    return total, count
