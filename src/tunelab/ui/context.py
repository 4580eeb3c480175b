"""What every tab needs to know about the running board: roots, folders, language, token."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tunelab.errors import ConfigError


@dataclass
class BoardContext:
    """Launch settings shared by the tabs.

    ``roots`` are the folders a path typed into the page may point into (the working directory
    plus every ``--root``); ``hf_token`` is kept in memory only and never written anywhere.
    """

    roots: list[Path] = field(default_factory=lambda: [Path.cwd()])
    runs_dir: Path = Path("saves")
    data_dir: Path = Path("data")
    lang: str = "en"
    hf_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.roots = [Path(r).expanduser().resolve() for r in self.roots]
        self.runs_dir = Path(self.runs_dir)
        self.data_dir = Path(self.data_dir)

    def resolve_path(self, text: str, what: str) -> Path:
        """``text`` as an absolute path (relative ones from the working directory), or a
        ConfigError naming ``what`` unless it lies under one of the roots."""
        cleaned = (text or "").strip()
        if not cleaned:
            raise ConfigError("no path given", where=what, hint="type a folder under " + self._roots_text())
        path = Path(cleaned).expanduser()
        resolved = (path if path.is_absolute() else Path.cwd() / path).resolve()
        if not any(resolved == root or root in resolved.parents for root in self.roots):
            raise ConfigError(f"{resolved} is outside the folders this board may use", where=what,
                              hint=f"use a path under {self._roots_text()}, or start the board "
                                   "with --root DIR to allow another folder")
        return resolved

    def _roots_text(self) -> str:
        return " or ".join(str(r) for r in self.roots)
