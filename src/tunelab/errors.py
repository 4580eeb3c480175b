"""TuneLab's user-facing exceptions.

Every error a user can cause names *where* the problem is (a config key, a file and row, a
request field), *what* was wrong, and *what would be right*. The CLI prints ``str(error)``
without a traceback unless ``--debug`` is given.
"""

from __future__ import annotations


class TuneLabError(Exception):
    """Base class: ``where`` / ``problem`` / ``hint`` are kept as fields for programmatic use."""

    kind = "error"

    def __init__(self, problem: str, *, where: str | None = None, hint: str | None = None):
        self.problem = problem
        self.where = where
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        text = f"{self.where}: {self.problem}" if self.where else self.problem
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(TuneLabError):
    """A recipe key or value is unknown, malformed, or conflicts with another key."""

    kind = "config error"


class DataError(TuneLabError):
    """A dataset is missing, unregistered, malformed, or has no usable rows."""

    kind = "data error"


class ModelError(TuneLabError):
    """A model, tokenizer or adapter cannot be found or loaded as asked."""

    kind = "model error"


class RunError(TuneLabError):
    """A run directory is in a state that makes the requested action unsafe or impossible."""

    kind = "run error"
