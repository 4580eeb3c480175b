"""What a recipe would do, without loading the model: the resolved recipe, the step plan and the
memory estimate. ``tunelab train --dry-run`` prints it; the board's live line shows the same.

Counting the samples needs the tokenised data (packing and cutoff change the row count), so the
tokenizer and the data are loaded; the tokenised data lands in the usual cache, which the real
run then reuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from tunelab.config.schema import Config
    from tunelab.train.plan import StepPlan


@dataclass
class DryRun:
    """A recipe's resolved settings, step plan and memory estimate (None with the reason why)."""

    recipe: dict[str, Any]
    plan: "StepPlan"
    estimate: Any
    estimate_error: str | None = None

    def describe(self) -> str:
        from tunelab.cli.format_estimate import format_estimate

        memory = format_estimate(self.estimate) if self.estimate else f"memory estimate unavailable: " \
                                                                       f"{self.estimate_error}"
        return "\n".join(["--- resolved recipe", recipe_yaml(self.recipe).rstrip(), "--- step plan",
                          self.plan.describe(), "--- memory", memory])


def recipe_yaml(values: dict[str, Any]) -> str:
    """``values`` as the YAML a recipe file holds (key order kept, unicode as is)."""
    return yaml.safe_dump(values, sort_keys=False, allow_unicode=True, default_flow_style=False)


def count_rows(cfg: "Config") -> tuple[int, int]:
    """(samples, training rows) of the recipe's data: rows differ from samples when packing."""
    from tunelab.data.pipeline import prepare_datasets
    from tunelab.model import load_tokenizer

    prepared = prepare_datasets(cfg, load_tokenizer(cfg.model), cfg.method.stage)
    return prepared.stats.get("samples", len(prepared.train)), len(prepared.train)


def step_plan(cfg: "Config", samples: int, rows: int, world_size: int = 1) -> "StepPlan":
    """The Trainer's step arithmetic for the recipe's batch, accumulation, epochs and max_steps."""
    from tunelab.train.plan import plan_for

    value = cfg.training_value
    return plan_for(cfg, samples=samples, rows=rows, batch_size=int(value("per_device_train_batch_size")),
                    grad_accum=int(value("gradient_accumulation_steps")), world_size=world_size,
                    epochs=float(value("num_train_epochs")), max_steps=int(value("max_steps")),
                    drop_last=bool(value("dataloader_drop_last")))


def memory_estimate(cfg: "Config", gpu_memory_bytes: int | None, num_gpus: int = 1) -> tuple[Any, str | None]:
    """(estimate, None), or (None, why) when the model's config cannot be priced."""
    from tunelab.estimate import estimate_memory

    try:
        return estimate_memory(cfg, gpu_memory_bytes=gpu_memory_bytes, num_gpus=num_gpus), None
    except Exception as exc:  # an estimate informs; a model it cannot price is not an error
        return None, str(exc)


def dry_run(cfg: "Config", world_size: int | None = None) -> DryRun:
    """Everything ``tunelab train --dry-run`` prints, for the detected GPU(s)."""
    from tunelab.estimate import detect_device_memory
    from tunelab.train.launch import wanted_processes

    world = world_size or wanted_processes()
    samples, rows = count_rows(cfg)
    estimate, error = memory_estimate(cfg, detect_device_memory(), world)
    return DryRun(recipe=cfg.to_dict(), plan=step_plan(cfg, samples, rows, world), estimate=estimate,
                  estimate_error=error)
