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
    """A recipe key or value is unknown, malformed, or conflicts with another key.

    ``key``, ``value``, ``allowed`` and ``suggestions`` (the nearest valid keys, for an unknown
    key) describe one problem; ``problems`` lists every problem found in the recipe (just this
    one unless the error was made by :meth:`combine`).
    """

    kind = "config error"

    def __init__(self, problem: str, *, where: str | None = None, hint: str | None = None,
                 key: str | None = None, value: object = None, allowed: str | None = None,
                 suggestions: tuple[str, ...] = (), problems: list["ConfigError"] | None = None):
        self.key, self.value, self.allowed = key, value, allowed
        self.suggestions = tuple(suggestions)
        self.problems: list[ConfigError] = list(problems) if problems else [self]
        super().__init__(problem, where=where, hint=hint)

    @classmethod
    def combine(cls, problems: list["ConfigError"], where: str | None = None) -> "ConfigError":
        """One error listing every problem (the problem itself when there is only one)."""
        flat = [p for error in problems for p in error.problems]
        if len(flat) == 1:
            return flat[0]
        lines = [f"{len(flat)} problems in the recipe:"]
        for item in flat:
            lines.append("  - " + str(item).replace("\n", "\n    "))
        return cls("\n".join(lines), where=where, problems=flat)


class DataError(TuneLabError):
    """A dataset is missing, unregistered, malformed, or has no usable rows."""

    kind = "data error"


class ModelError(TuneLabError):
    """A model, tokenizer or adapter cannot be found or loaded as asked."""

    kind = "model error"


class RunError(TuneLabError):
    """A run directory is in a state that makes the requested action unsafe or impossible."""

    kind = "run error"
