"""Write an export beside its destination and move it into place only when it is complete.

An interrupted or failed export leaves at most a ``.<name>.partial-<pid>`` folder (removed on
failure when Python gets the chance), never a folder at ``export_dir`` that looks finished. A
partial folder whose process is gone (killed with SIGKILL, a power cut) is removed by the next
export to the same destination.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Callable

from tunelab.errors import ConfigError

COMPLETE_MARKER = "export_info.json"
OWNER_FILE = ".tunelab-export-owner.json"
"""Inside a staging folder: the host and pid of the export writing it."""


def check_destination(export_dir: str | None, overwrite: bool,
                      protected: dict[str, str] | None = None) -> Path:
    """The destination folder, after refusing a missing path, a non-empty folder, and any folder
    that is, contains or lies inside a training run or one of ``protected`` (label -> folder:
    the base model and adapters being exported)."""
    if not export_dir:
        raise ConfigError("no export folder given", where="key 'export_dir'",
                          hint="set export_dir (or --out) to the folder to write the model to")
    target = Path(export_dir).expanduser()
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} exists and is a file", where="key 'export_dir'",
                          hint="choose a folder path")
    _refuse_overlap(target, protected or {})
    _refuse_runs(target)
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise ConfigError(f"{target} is not empty", where="key 'export_dir'",
                          hint="choose an empty or new folder, or set export_overwrite: true "
                               "(--overwrite) to replace it")
    return target


def _refuse_overlap(target: Path, protected: dict[str, str]) -> None:
    resolved = target.resolve()
    for label, folder in protected.items():
        other = Path(folder).expanduser()
        if not other.is_dir():
            continue  # a hub id: nothing on disk to overwrite
        other = other.resolve()
        relation = ("is" if resolved == other else "is inside" if resolved.is_relative_to(other)
                    else "contains" if other.is_relative_to(resolved) else None)
        if relation:
            raise ConfigError(f"{target} {relation} the {label} ({other}); exporting there would "
                              "overwrite or mix with it", where="key 'export_dir'",
                              hint="choose a new folder outside it, e.g. --out merged/")


def _is_run(folder: Path) -> bool:
    return (folder / "manifest.json").is_file() or any(
        p.is_dir() for p in folder.glob("checkpoint-[0-9]*"))


def _refuse_runs(target: Path) -> None:
    """A training run (manifest.json or checkpoint-N) at, around or up to two levels below it."""
    resolved = target.resolve()
    around = [p for p in [resolved, *resolved.parents] if p.is_dir()]
    below = [p for pattern in ("*", "*/*") for p in resolved.glob(pattern) if p.is_dir()] \
        if resolved.is_dir() else []
    for folder in around + below:
        if _is_run(folder):
            relation = ("is" if folder == resolved else "is inside" if folder in around
                        else "contains")
            raise ConfigError(f"{target} {relation} the training run {folder}; exporting there "
                              "would replace or mix with its checkpoints and manifest",
                              where="key 'export_dir'",
                              hint="choose a folder outside every run, e.g. --out merged/")


def _pid_alive(pid: int, since: float) -> bool:
    """Whether process ``pid`` runs on this host and was started before ``since`` (a pid that was
    reused by a process started later is not the writer)."""
    import psutil

    try:
        return psutil.Process(pid).create_time() <= since + 1.0
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


def _stale(folder: Path) -> bool:
    """Whether a staging folder's writer is gone (only judged for writers on this host)."""
    suffix = folder.name.rsplit("-", 1)[-1]
    if not suffix.isdigit():
        return False
    try:
        owner = json.loads((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        owner = {}  # killed before the owner file was (fully) written, or an older TuneLab
    if not isinstance(owner, dict):
        owner = {}
    pid = int(suffix)
    if owner.get("host", socket.gethostname()) != socket.gethostname():
        return False  # another machine on a shared disk: its pids mean nothing here
    return not _pid_alive(pid, folder.stat().st_mtime)


def remove_stale_staging(target: Path, log: Callable[[str], None] = print) -> list[Path]:
    """Delete ``.<name>.partial-<pid>`` / ``.old-<pid>`` folders of ``target`` whose process is gone."""
    removed = []
    for kind in ("partial", "old"):
        for folder in target.parent.glob(f".{target.name}.{kind}-*"):
            if folder.is_dir() and _stale(folder):
                shutil.rmtree(folder, ignore_errors=True)
                log(f"removed {folder.name}: left by an export (pid {folder.name.rsplit('-', 1)[1]}) "
                    "that did not finish")
                removed.append(folder)
    return removed


class Staging:
    """A scratch folder next to the destination; ``commit()`` renames it into place."""

    def __init__(self, target: Path, log: Callable[[str], None] = print):
        self.target = target
        self.path = target.parent / f".{target.name}.partial-{os.getpid()}"
        self.log = log

    def __enter__(self) -> "Staging":
        self.target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(self.target, self.log)
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir()
        (self.path / OWNER_FILE).write_text(json.dumps({"host": socket.gethostname(),
                                                        "pid": os.getpid()}))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)

    def commit(self) -> Path:
        """Replace the destination with the staged folder (same filesystem: a rename)."""
        (self.path / OWNER_FILE).unlink(missing_ok=True)
        old = None
        if self.target.exists():
            old = self.target.parent / f".{self.target.name}.old-{os.getpid()}"
            os.replace(self.target, old)
        os.replace(self.path, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target
