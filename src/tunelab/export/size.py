"""Shard sizes as users write them: 2 (gigabytes), 1.88, "500MB", "1.5GB", "1GiB"."""

from __future__ import annotations

import re

from tunelab.errors import ConfigError

# Decimal units follow transformers' convention ("5GB" = 5 * 10**9 bytes); binary units are explicit.
_UNITS = {"": 10**9, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")


def parse_size(value: str | float | int, key: str = "export_size") -> int:
    """Bytes from a shard size; a bare number is gigabytes (LLaMA-Factory's ``export_size: 2``)."""
    if isinstance(value, bool):
        raise _bad_size(value, key)
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        match = _PATTERN.match(str(value))
        if not match:
            raise _bad_size(value, key)
        number, unit = float(match.group(1)), match.group(2).upper()
    if unit not in _UNITS:
        raise _bad_size(value, key)
    size = int(number * _UNITS[unit])
    if size < 1:
        raise ConfigError(f"a shard must hold at least one byte, got {value!r}", where=f"key '{key}'")
    return size


def format_size(size: int) -> str:
    """A byte count for messages: 1.50 GB, 500.0 MB, 12.3 KB."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= factor:
            return f"{size / factor:.2f} {unit}"
    return f"{size} B"


def _bad_size(value: object, key: str) -> ConfigError:
    return ConfigError(f"{value!r} is not a size", where=f"key '{key}'",
                       hint="write a number of gigabytes (2, 1.5) or a size with a unit "
                            "(500MB, 2GB, 1GiB)")
