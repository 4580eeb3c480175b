"""Shard sizes as users write them: 2 (gigabytes), 1.88, "500MB", "1.5GB", "1GiB"."""

from __future__ import annotations

from tunelab.sizes import format_size
from tunelab.sizes import parse_size as _parse_size

__all__ = ["format_size", "parse_size"]


def parse_size(value: str | float | int, key: str = "export_size") -> int:
    """Bytes from a shard size; decimal units, as transformers' ``max_shard_size`` uses them."""
    return _parse_size(value, where=f"key '{key}'")
