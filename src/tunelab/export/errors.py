"""The export's own error type (user-facing, printed without a traceback)."""

from __future__ import annotations

from tunelab.errors import TuneLabError


class ExportError(TuneLabError):
    """An export failed a check (verification, read-back) or finished on disk only (hub upload)."""

    kind = "export error"
