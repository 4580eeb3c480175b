"""One run directory: its layout, manifest and events file.

Layout (any tool finds a run from the folder alone)::

    <run>/manifest.json      config as given and resolved, versions, data fingerprints, status
    <run>/events.jsonl       one JSON object per logging step (and start/end markers)
    <run>/checkpoint-N/      Trainer checkpoints (resume_from_checkpoint restores them)
    <run>/adapter_*|model*   the final adapter or model, with tokenizer and chat template
    <run>/loss.png           loss curve
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
STATUSES = ("created", "running", "completed", "failed", "interrupted")


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class RunDir:
    """A run's folder; every write is atomic or append-only so readers never see half a file."""

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        os.replace(tmp, self.manifest_path)

    def update_manifest(self, **changes: Any) -> dict[str, Any]:
        manifest = self.read_manifest()
        manifest.update(changes)
        manifest["updated_at"] = now_iso()
        self.write_manifest(manifest)
        return manifest

    def set_status(self, status: str, **extra: Any) -> None:
        assert status in STATUSES, status
        if status in ("completed", "failed", "interrupted"):
            extra.setdefault("finished_at", now_iso())
        self.update_manifest(status=status, **extra)

    def append_event(self, event: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"time": time.time(), **event}, ensure_ascii=False, default=str)
        with self.events_path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def read_events(self) -> list[dict[str, Any]]:
        if not self.events_path.is_file():
            return []
        events = []
        for line in self.events_path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line being written right now
        return events

    def drop_events_after(self, step: int) -> int:
        """Forget the events of steps after ``step`` (a resume trains them again, and readers
        should see each step once); returns how many were dropped."""
        if not self.events_path.is_file():
            return 0
        lines = self.events_path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if _event_step(line) <= step]
        if len(kept) < len(lines):
            tmp = self.events_path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            os.replace(tmp, self.events_path)
        return len(lines) - len(kept)

    def checkpoints(self) -> list[Path]:
        """checkpoint-N folders, oldest first."""
        found = [p for p in self.path.glob("checkpoint-*") if p.is_dir() and p.name[11:].isdigit()]
        return sorted(found, key=lambda p: int(p.name[11:]))


def _event_step(line: str) -> float:
    """The step of one events.jsonl line; -inf for lines without one (kept by any cut)."""
    try:
        step = json.loads(line).get("step")
    except (json.JSONDecodeError, AttributeError):
        return float("-inf")
    return step if isinstance(step, (int, float)) else float("-inf")


def new_manifest(*, config_given: dict, config_resolved: dict, stage: str, method: str,
                 model: str, run_name: str, command: list[str]) -> dict[str, Any]:
    """The manifest written when a run starts."""
    return {
        "format": 1,
        "run_name": run_name,
        "status": "created",
        "stage": stage,
        "finetuning_type": method,
        "model": model,
        "created_at": now_iso(),
        "updated_at": now_iso(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "command": command,
        "config_given": config_given,
        "config_resolved": config_resolved,
        "versions": package_versions(),
    }


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    result = {}
    for name in ("tunelab", "torch", "transformers", "peft", "trl", "datasets", "accelerate",
                 "bitsandbytes"):
        try:
            result[name] = version(name)
        except PackageNotFoundError:
            continue
    return result
