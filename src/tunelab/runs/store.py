"""Find every run under a folder (CLI or board started), with a status that tells the truth."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.runs.run_dir import MANIFEST, RunDir


@dataclass
class RunInfo:
    """A run as listed by ``tunelab runs`` and the board's Runs tab."""

    path: Path
    name: str
    status: str
    stage: str
    finetuning_type: str
    model: str
    created_at: str
    step: int | None
    total_steps: int | None
    loss: float | None

    def as_row(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(manifest: dict[str, Any]) -> str:
    """The manifest's status, except that a run marked 'created' or 'running' whose recorded
    process is gone (killed, machine restarted) is 'interrupted'. Only a process on this host can
    be checked; a run written elsewhere keeps its recorded status."""
    import socket

    status = manifest.get("status", "unknown")
    if status in ("created", "running") and manifest.get("host") == socket.gethostname():
        if not _pid_alive(manifest.get("pid")):
            return "interrupted"
    return status


def read_run(path: Path) -> RunInfo:
    """A run's row: status from the manifest (see effective_status), step and loss from its
    events, the step from the manifest when it knows better (a run shorter than logging_steps)."""
    run = RunDir(path)
    manifest = run.read_manifest()
    events = run.read_events()
    last = next((e for e in reversed(events) if e.get("type") == "log"), {})
    marker = next((e for e in reversed(events) if e.get("type") in ("train_begin", "train_end")), {})
    step = manifest.get("global_step") if manifest.get("status") != "running" else None
    step = step if step is not None else max(last.get("step", -1), marker.get("step", -1))
    return RunInfo(
        path=path,
        name=manifest.get("run_name", path.name),
        status=effective_status(manifest),
        stage=manifest.get("stage", "?"),
        finetuning_type=manifest.get("finetuning_type", "?"),
        model=manifest.get("model", "?"),
        created_at=manifest.get("created_at", ""),
        step=step if step >= 0 else None,
        total_steps=last.get("total_steps", marker.get("total_steps")),
        loss=last.get("loss"),
    )


class RunStore:
    """Discovers runs by their manifest files under one or more root folders."""

    def __init__(self, roots: list[str | Path] | None = None):
        self.roots = [Path(r) for r in (roots or ["saves"])]

    def discover(self) -> list[RunInfo]:
        """Every run under the roots, newest first."""
        runs = []
        for root in self.roots:
            if not root.is_dir():
                continue
            for manifest in root.rglob(MANIFEST):
                if manifest.parent.name.startswith("checkpoint-"):
                    continue
                runs.append(read_run(manifest.parent))
        return sorted(runs, key=lambda r: r.created_at, reverse=True)
