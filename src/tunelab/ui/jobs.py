"""Training as a child process of the board, and the truth about a run read from its folder.

The board writes the recipe YAML and starts ``python -m tunelab train <recipe.yaml>`` in its own
session (so a board restart leaves it running); the page then only reads the run directory
(manifest.json, events.jsonl) and the child's log. Nothing here trains: the child is the CLI.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import RunError
from tunelab.runs import RunDir
from tunelab.runs.store import effective_status

BOARD_FOLDER = ".board"
# Children started by this board process, by run folder; polled so finished ones are reaped.
_CHILDREN: dict[Path, subprocess.Popen] = {}


def job_files(runs_dir: Path, run_path: Path) -> tuple[Path, Path]:
    """(recipe YAML, log) the board keeps for a run, named from its folder so a restarted board
    finds them again."""
    tag = hashlib.sha1(str(Path(run_path).resolve()).encode()).hexdigest()[:10]
    folder = Path(runs_dir) / BOARD_FOLDER
    return folder / f"{Path(run_path).name}-{tag}.yaml", folder / f"{Path(run_path).name}-{tag}.log"


def train_command(recipe_path: Path) -> list[str]:
    """The exact command the board runs (and shows in Preview command)."""
    return [sys.executable, "-m", "tunelab", "train", str(recipe_path)]


def start_training(runs_dir: Path, run_path: Path, recipe_yaml: str, hf_token: str | None = None) -> Path:
    """Write the recipe, start the child, return the log path. Refuses a run that is running."""
    run_path = Path(run_path).resolve()
    if status_of(run_path)[0] in ("running", "starting"):
        raise RunError("this run is still running", where=str(run_path),
                       hint="abort it first, or choose another output_dir")
    recipe, log = job_files(runs_dir, run_path)
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text(recipe_yaml, encoding="utf-8")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    if hf_token:
        env["HF_TOKEN"] = hf_token  # handed to the child in memory, never written
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ tunelab train {recipe}\n")
        handle.flush()
        _CHILDREN[run_path] = subprocess.Popen(train_command(recipe), stdout=handle, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    return log


def abort_training(run_path: Path) -> int:
    """Send SIGINT to the run's training process (it saves a checkpoint, then stops); its pid."""
    run_path = Path(run_path).resolve()
    child = _CHILDREN.get(run_path)
    pid = child.pid if child and child.poll() is None else None
    if pid is None:
        manifest = RunDir(run_path).read_manifest()
        if effective_status(manifest) == "running" and manifest.get("host") == socket.gethostname():
            pid = manifest.get("pid")
    if not pid:
        raise RunError("no training process is running for this run", where=str(run_path))
    os.kill(int(pid), signal.SIGINT)
    return int(pid)


def status_of(run_path: Path) -> tuple[str, str | None]:
    """(status, error) of a run: the manifest's truth once it exists, else the child's state
    ('starting' while it loads, 'failed' when it exited before creating the run)."""
    run_path = Path(run_path).resolve()
    child = _CHILDREN.get(run_path)
    code = child.poll() if child else None  # poll() also reaps, so a dead pid is not "alive"
    manifest = RunDir(run_path).read_manifest()
    if manifest:
        status = effective_status(manifest)
        if child is not None and code is None and status != "running":
            return "starting", None  # a resume loading before it marks the run running again
        if status == "running" and child is not None and code is not None:
            status = "interrupted" if code in (130, -2, -15) else "failed"
        return status, manifest.get("error")
    if child is None:
        return "unknown", None
    if code is None:
        return "starting", None
    return ("completed", None) if code == 0 else ("failed", f"the training process exited with code {code}")


@dataclass
class Progress:
    """What the progress bar, chart and counters show for a run."""

    status: str
    error: str | None = None
    step: int = 0
    total: int | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None
    tokens_per_s: float | None = None
    points: list[tuple[int, float, str]] = field(default_factory=list)  # (step, loss, "train"|"eval")
    checkpoints: list[str] = field(default_factory=list)


def read_progress(run_path: Path) -> Progress:
    """The run's progress from its events file and manifest."""
    status, error = status_of(run_path)
    run = RunDir(Path(run_path))
    progress = Progress(status=status, error=error, checkpoints=[p.name for p in run.checkpoints()])
    for event in run.read_events():
        kind = event.get("type")
        if kind in ("train_begin", "log", "eval", "train_end"):
            progress.step = event.get("step", progress.step) or progress.step
            progress.total = event.get("total_steps", progress.total) or progress.total
        if kind in ("log", "eval") and event.get("loss") is not None:
            progress.points.append((event["step"], float(event["loss"]), "train" if kind == "log" else "eval"))
        if kind == "log":
            progress.elapsed_s, progress.eta_s = event.get("elapsed_s"), event.get("eta_s")
            progress.tokens_per_s = event.get("tokens_per_s")
        if kind == "train_end":
            progress.elapsed_s, progress.eta_s = event.get("elapsed_s"), 0
    return progress


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log (progress-bar carriage returns folded), '' when there is none."""
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - 64_000, 0))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    folded = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(folded[-lines:])


def wait_started(run_path: Path, timeout: float = 5.0) -> None:
    """Give a just-started child a moment, so the first status shown is not stale."""
    deadline = time.time() + timeout
    while time.time() < deadline and status_of(run_path)[0] == "unknown":
        time.sleep(0.1)
