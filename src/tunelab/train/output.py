"""Where a run goes, and the rules that keep earlier work safe (no silent resume, no overwrite)."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.errors import RunError
from tunelab.runs import RunDir

if TYPE_CHECKING:
    from tunelab.config.schema import Config


def default_run_name(cfg: "Config") -> str:
    return f"{cfg.method.stage}-{time.strftime('%Y%m%d-%H%M%S')}"


def default_output_dir(cfg: "Config", run_name: str) -> Path:
    """saves/<model>/<finetuning_type>/<run_name>, the model named by its last path part."""
    model = Path(str(cfg.model.model_name_or_path).rstrip("/")).name or "model"
    model = re.sub(r"[^A-Za-z0-9._-]+", "-", model)
    return Path("saves") / model / cfg.method.finetuning_type / run_name


def resolve_output(cfg: "Config") -> tuple[Path, str]:
    """(run directory, run name) from output_dir / run_name or their defaults."""
    run_name = cfg.output.run_name
    if cfg.output.output_dir:
        path = Path(cfg.output.output_dir)
        return path, run_name or path.name
    run_name = run_name or default_run_name(cfg)
    return default_output_dir(cfg, run_name), run_name


def resolve_resume(cfg: "Config", run_path: Path, guard: bool = True) -> str | None:
    """The checkpoint to resume from, or None; never resumes unless the recipe asked.

    Raises RunError when ``output_dir`` already holds work and the recipe did not say whether to
    resume it (resume_from_checkpoint) or replace it (overwrite_output_dir).
    """
    run = RunDir(run_path)
    asked = cfg.output.resume_from_checkpoint
    if asked:
        from tunelab.train.resume import find_checkpoint

        return find_checkpoint(asked, run, log=print if guard else _quiet)
    if not guard or not run_path.exists() or not any(run_path.iterdir()):
        return None
    if cfg.output.overwrite_output_dir:
        return None
    checkpoints = run.checkpoints()
    if checkpoints:
        raise RunError(
            f"output_dir already holds checkpoints ({', '.join(p.name for p in checkpoints[-3:])}); "
            "TuneLab never resumes silently",
            where=f"output_dir {run_path}",
            hint="to continue THIS run set resume_from_checkpoint=last; to start a NEW run from its "
                 "weights set adapter_name_or_path to the checkpoint and choose another output_dir; "
                 "to discard it set overwrite_output_dir=true")
    raise RunError("output_dir is not empty", where=f"output_dir {run_path}",
                   hint="choose another output_dir (or leave it unset for a fresh saves/ folder), "
                        "or set overwrite_output_dir=true to replace its contents")


def _quiet(message: str) -> None:
    """Workers and the torchrun parent's second look stay silent; one process reports."""


def clear_for_overwrite(run_path: Path) -> None:
    """Remove an old run's files (the user set overwrite_output_dir)."""
    if run_path.is_dir():
        for child in run_path.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
