"""Byte sizes as users write them: 24, 1.88, "500MB", "1.5GB", "80GiB" (one parser for every key)."""

from __future__ import annotations

import re

from tunelab.errors import ConfigError

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")
_POWERS = {"B": 0, "K": 1, "M": 2, "G": 3, "T": 4}


class SizeError(ConfigError, ValueError):
    """A size that cannot be read; also a ValueError for callers that parse many kinds of values."""


def parse_size(value: str | int | float, *, where: str, binary: bool = False) -> int:
    """Bytes from a size; a bare number is gigabytes.

    ``binary`` makes KB/MB/GB/TB powers of 1024 (GPU memory: a "24 GB" card holds 24 GiB);
    otherwise they are powers of 1000, as Hugging Face's shard sizes are. KiB/MiB/GiB/TiB are
    always binary.
    """
    if isinstance(value, bool):
        raise _bad(value, where)
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        match = _PATTERN.match(str(value))
        if not match:
            raise _bad(value, where)
        number, unit = float(match.group(1)), match.group(2).upper()
    size = int(number * _unit_bytes(unit, binary, value, where))
    if size < 1:
        raise SizeError(f"a size must be positive, got {value!r}", where=where)
    return size


def _unit_bytes(unit: str, binary: bool, value: object, where: str) -> int:
    if unit == "":
        unit = "G"
    head, tail = unit[0], unit[1:]
    if head not in _POWERS or tail not in ("", "B", "IB") or (head == "B" and tail):
        raise _bad(value, where)
    base = 1024 if (binary or tail == "IB") else 1000
    return base ** _POWERS[head]


def format_size(size: int) -> str:
    """A byte count for messages: 1.50 GB, 500.0 MB, 12.3 KB (powers of 1000)."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if size >= factor:
            return f"{size / factor:.2f} {unit}"
    return f"{size} B"


def _bad(value: object, where: str) -> SizeError:
    return SizeError(f"{value!r} is not a size", where=where,
                     hint="write a number of gigabytes (2, 1.5) or a size with a unit (500MB, 2GB, 1GiB)")
