"""Write an export beside its destination and move it into place only when it is complete.

An interrupted or failed export leaves at most a ``.<name>.partial-<pid>`` folder (removed on
failure when Python gets the chance), never a folder at ``export_dir`` that looks finished.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tunelab.errors import ConfigError

COMPLETE_MARKER = "export_info.json"


def check_destination(export_dir: str | None, overwrite: bool) -> Path:
    """The destination folder, after refusing a missing path or a non-empty folder."""
    if not export_dir:
        raise ConfigError("no export folder given", where="key 'export_dir'",
                          hint="set export_dir (or --out) to the folder to write the model to")
    target = Path(export_dir).expanduser()
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target} exists and is a file", where="key 'export_dir'",
                          hint="choose a folder path")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise ConfigError(f"{target} is not empty", where="key 'export_dir'",
                          hint="choose an empty or new folder, or set export_overwrite: true "
                               "(--overwrite) to replace it")
    return target


class Staging:
    """A scratch folder next to the destination; ``commit()`` renames it into place."""

    def __init__(self, target: Path):
        self.target = target
        self.path = target.parent / f".{target.name}.partial-{os.getpid()}"

    def __enter__(self) -> "Staging":
        self.target.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)

    def commit(self) -> Path:
        """Replace the destination with the staged folder (same filesystem: a rename)."""
        old = None
        if self.target.exists():
            old = self.target.parent / f".{self.target.name}.old-{os.getpid()}"
            os.replace(self.target, old)
        os.replace(self.path, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target
