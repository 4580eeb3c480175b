"""Resuming THIS run: which checkpoints count, and what a resume will do before it does it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from tunelab.errors import RunError
from tunelab.runs import RunDir

WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors",
           "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
           "pytorch_model_fsdp.bin")  # the last: an FSDP full-state-dict checkpoint
# Keys whose change since the checkpoint changes the schedule (or the data position) on resume.
SCHEDULE_KEYS = ("num_train_epochs", "max_steps", "learning_rate", "lr_scheduler_type",
                 "lr_scheduler_kwargs", "warmup_ratio", "warmup_steps",
                 "per_device_train_batch_size", "gradient_accumulation_steps")


def checkpoint_problem(path: Path) -> str | None:
    """Why ``path`` is not a complete Trainer checkpoint, or None when it is one.

    The Trainer writes trainer_state.json last, so a folder cut short by a kill lacks it.
    """
    if not path.is_dir():
        return "no such folder"
    try:
        json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no trainer_state.json (it was cut short while being written)"
    except (OSError, ValueError):
        return "trainer_state.json is unreadable (cut short while being written?)"
    # FSDP sharded state dicts are folders: pytorch_model_fsdp_0/, optimizer_0/
    if not any((path / name).is_file() for name in WEIGHTS) and not any(path.glob("pytorch_model_fsdp_*")):
        return "no model or adapter weights"
    sharded_state = any(path.glob("global_step*")) or any(path.glob("optimizer_*"))
    optimizer = (path / "optimizer.pt").is_file() or (path / "optimizer.bin").is_file()
    if not optimizer and not sharded_state:
        return "no optimizer state (optimizer.pt); was it saved with save_only_model?"
    return None


def find_checkpoint(asked: str, run: RunDir, log: Callable[[str], None] = print) -> str:
    """The checkpoint folder that ``resume_from_checkpoint=asked`` means; RunError if none.

    'last' (or 'latest', 'true') is the newest complete checkpoint-N of the run, naming each
    incomplete one it skips; a bare name such as 'checkpoint-40' is looked up in the run folder.
    """
    if asked.lower() in ("last", "latest", "true"):
        return str(_last_complete(asked, run, log))
    path = Path(asked)
    if not path.exists() and (run.path / asked).exists():
        path = run.path / asked
    problem = checkpoint_problem(path)
    if problem:
        raise RunError(f"{path} is not a complete Trainer checkpoint: {problem}",
                       where="key 'resume_from_checkpoint'",
                       hint="give a complete checkpoint-N folder of this run (a bare name is looked "
                            "up in output_dir) or 'last'; to start from an adapter's weights in a new "
                            "run use adapter_name_or_path")
    return str(path)


def _last_complete(asked: str, run: RunDir, log: Callable[[str], None]) -> Path:
    checkpoints = run.checkpoints()
    for path in reversed(checkpoints):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        log(f"skipping {path.name}: incomplete checkpoint, {problem}")
    found = "no checkpoint-N folder" if not checkpoints else "no complete checkpoint-N folder"
    raise RunError(f"there is {found} to resume from",
                   where=f"resume_from_checkpoint={asked} in {run.path}",
                   hint="set save_steps so checkpoints are written, or remove resume_from_checkpoint")


def describe_resume(checkpoint: str, plan: Any, args: Any, given: dict, before: dict) -> list[str]:
    """What resuming from ``checkpoint`` will do under the new plan, as lines to print.

    ``given`` / ``before`` are the resolved recipes of now and of the run's last start. Raises
    RunError when the checkpoint is at or past the end of the new schedule (nothing to train).
    """
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    step, old_total = int(state.get("global_step", 0)), state.get("max_steps")
    name = Path(checkpoint).name
    if step >= plan.total_steps:
        raise RunError(
            f"{name} is at step {step} and this recipe's schedule ends at step {plan.total_steps}: "
            "there is nothing left to train",
            where=f"resume_from_checkpoint={checkpoint}",
            hint=f"to train on, raise max_steps (or num_train_epochs) so the schedule ends after step "
                 f"{step}; to start a NEW run from these weights set adapter_name_or_path={checkpoint} "
                 "and another output_dir")
    lines = [f"resume: from step {step} of {plan.total_steps}, {plan.total_steps - step} steps left"]
    changed = [f"{key} {before.get(key)!r} -> {given.get(key)!r}" for key in SCHEDULE_KEYS
               if key in before and before.get(key) != given.get(key)]
    if old_total != plan.total_steps:
        changed.insert(0, f"total steps {old_total} -> {plan.total_steps}")
    if changed:
        lines.append(f"the schedule changed since {name} was written: {'; '.join(changed)}")
        lines.append(_learning_rate_note(state, step, plan.total_steps, args))
    return lines


def _learning_rate_note(state: dict, step: int, total: int, args: Any) -> str:
    new = learning_rate_at(step, total, args)
    logged = [e["learning_rate"] for e in state.get("log_history", []) if "learning_rate" in e]
    before = f" (the last rate logged before the checkpoint was {logged[-1]:.3g})" if logged else ""
    if new is None:
        return f"the learning rate follows the NEW schedule from step {step} on{before}"
    return f"the learning rate follows the NEW schedule: {new:.3g} at step {step + 1}{before}"


def learning_rate_at(step: int, total: int, args: Any) -> float | None:
    """The learning rate transformers' scheduler for ``args`` gives after ``step`` of ``total``
    steps; None for schedulers that depend on metrics."""
    import torch
    from transformers import get_scheduler

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=args.learning_rate)
    scheduler = get_scheduler(args.lr_scheduler_type, optimizer,
                              num_warmup_steps=args.get_warmup_steps(total), num_training_steps=total,
                              scheduler_specific_kwargs=args.lr_scheduler_kwargs or {})
    lambdas = getattr(scheduler, "lr_lambdas", None)
    return args.learning_rate * lambdas[0](step) if lambdas else None
