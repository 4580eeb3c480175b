"""Find every run under a folder (CLI or board started), with a status that tells the truth."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import RunError
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
    datasets: list[str] = field(default_factory=list)
    finished_at: str = ""
    duration_s: float | None = None

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
        datasets=list((manifest.get("data") or {}).get("datasets") or []),
        finished_at=manifest.get("finished_at", ""),
        duration_s=_duration(manifest),
    )


def _duration(manifest: dict[str, Any]) -> float | None:
    """Seconds from start to finish (to the last manifest update while unfinished)."""
    def seconds(stamp: str | None) -> float | None:
        try:
            return time.mktime(time.strptime(stamp or "", "%Y-%m-%dT%H:%M:%S%z"))
        except ValueError:
            return None

    start = seconds(manifest.get("created_at"))
    end = seconds(manifest.get("finished_at") or manifest.get("updated_at"))
    return end - start if start is not None and end is not None else None


def loss_points(path: Path) -> list[dict[str, Any]]:
    """Every logged loss of a run: {"step", "loss", "kind": "train" | "eval"}, in order."""
    kinds = {"log": "train", "eval": "eval"}
    return [{"step": e["step"], "loss": e["loss"], "kind": kinds[e["type"]]}
            for e in RunDir(path).read_events()
            if e.get("type") in kinds and e.get("loss") is not None and e.get("step") is not None]


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

    def delete(self, path: str | Path) -> Path:
        """Remove the run folder ``path``; RunError unless it is a run (its own manifest.json)
        strictly inside one of the roots and not running. Nothing else is ever removed."""
        folder = Path(path).resolve()
        roots = [r.resolve() for r in self.roots]
        if not any(root in folder.parents for root in roots):
            raise RunError(f"{folder} is not inside the runs folder", where="delete",
                           hint=f"only runs under {', '.join(map(str, roots))} can be deleted here")
        if not RunDir(folder).exists() or folder.name.startswith("checkpoint-"):
            raise RunError(f"{folder} is not a run directory (no manifest.json)", where="delete",
                           hint="pick a run from the runs table")
        if effective_status(RunDir(folder).read_manifest()) in ("created", "running"):
            raise RunError(f"run {folder.name} is still training", where="delete",
                           hint="abort it first, then delete it")
        shutil.rmtree(folder)
        return folder
