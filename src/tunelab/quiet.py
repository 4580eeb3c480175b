"""Library messages a TuneLab user cannot act on, silenced once at start-up.

Each entry names the library line it matches and why it is noise. Everything else from the
libraries (warnings about the user's own settings, deprecations of keys the recipe wrote) is kept.
Called by the CLI before any command runs; ``silence_library_noise()`` is idempotent.
"""

from __future__ import annotations

import logging
import warnings

# (logger name, message start, why it is noise)
_LOG_LINES = [
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward",
     "bitsandbytes looks for an optional Hub kernel on every import and falls back to its own "
     "CPU code, which is what runs; the Hub is off-limits here anyway"),
    ("bitsandbytes.autograd._functions", "MatMul8bitLt: inputs will be cast",
     "printed for every 8-bit matmul (thousands per chat answer); the cast is how 8-bit "
     "inference works and no setting changes it"),
]

# (warning category, message regex, why it is noise)
_WARNINGS = [
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated",
     "PEFT reads this transformers property when it wraps a model; not our call, not the user's"),
]

_installed = False


class _DropLines(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def silence_library_noise() -> None:
    """Install the filters above (once per process)."""
    global _installed
    if _installed:
        return
    for name, start, _why in _LOG_LINES:
        logging.getLogger(name).addFilter(_DropLines(start))
    for category, pattern, _why in _WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=category)
    _installed = True
