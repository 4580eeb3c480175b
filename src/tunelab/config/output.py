"""Where a run is written and how it is reported."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.fields import option


@dataclass
class OutputArgs:
    output_dir: str | None = option(
        None, "Run directory. Unset: saves/<model>/<finetuning_type>/<run_name>.")
    run_name: str | None = option(None, "Run name. Unset: <stage>-<date>-<time>.")
    overwrite_output_dir: bool = option(False, "Allow writing into a non-empty run directory.")
    plot_loss: bool = option(True, "Save a loss-curve PNG in the run directory.")
    resume_from_checkpoint: str | None = option(
        None, "Continue the SAME run from a checkpoint folder (or 'last' for the newest in "
        "output_dir): restores optimizer, scheduler, step, RNG and data position. To start a NEW "
        "run from trained weights, use adapter_name_or_path.")
