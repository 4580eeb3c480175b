"""Fingerprints and the on-disk cache of tokenised datasets.

A fingerprint covers everything that can change the token ids: the data files (content for
small files, size + mtime for large ones), the registry entries, the tokenizer (its full
``tokenizer.json`` serialisation and special tokens), the chat template and every encoding
option. Same fingerprint, same ids: the second run loads instead of tokenising.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

# Bump when the cached layout or the encoding rules change, so old caches are not reused.
PIPELINE_VERSION = 1
_HASH_BYTES_UP_TO = 64 * 2**20


def tunelab_home() -> Path:
    """``$TUNELAB_HOME``, default ``~/.cache/tunelab``."""
    return Path(os.environ.get("TUNELAB_HOME") or "~/.cache/tunelab").expanduser()


def tokenized_cache_dir(fingerprint: str) -> Path:
    """Where a tokenised dataset with this fingerprint lives."""
    return tunelab_home() / "cache" / "tokenized" / fingerprint


def file_signature(path: Path) -> list:
    """What identifies a data file's content, cheaply: its bytes' hash, or size+mtime if huge."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    out = []
    for f in files:
        stat = f.stat()
        if stat.st_size <= _HASH_BYTES_UP_TO:
            out.append([f.name, hashlib.sha256(f.read_bytes()).hexdigest()])
        else:
            out.append([f.name, stat.st_size, stat.st_mtime_ns])
    return out


def tokenizer_signature(tokenizer) -> str:
    """A hash of the tokenizer's vocabulary, merges, special tokens and chat template."""
    digest = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    extra = [tokenizer.chat_template, tokenizer.special_tokens_map, getattr(tokenizer, "add_bos_token", None)]
    digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def fingerprint(parts: dict) -> str:
    """A short stable hash of a JSON-able description."""
    text = json.dumps({"version": PIPELINE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def save_prepared(target: Path, splits: dict, meta: dict) -> None:
    """Write ``splits`` (name -> datasets.Dataset) and ``meta`` (JSON) so the folder appears whole
    or not at all: a crashed run never leaves a half cache that a later run would trust."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        for name, dataset in splits.items():
            dataset.save_to_disk(str(staging / name))
        (staging / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        if target.exists():
            shutil.rmtree(target)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "meta.json").is_file():  # lost a race to an identical writer: fine
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def load_prepared(target: Path) -> tuple[dict, dict] | None:
    """``(splits, meta)`` from a folder written by :func:`save_prepared`, or None if absent."""
    meta_file = target / "meta.json"
    if not meta_file.is_file():
        return None
    import datasets

    meta = json.loads(meta_file.read_text())
    splits = {name: datasets.load_from_disk(str(target / name)) for name in meta.get("splits", [])}
    return splits, meta
