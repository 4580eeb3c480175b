"""The named built-in models (``tunelab/tiny-chat`` ...), built once and cached on disk."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from functools import lru_cache
from pathlib import Path

from tunelab.errors import ModelError

BUILDER_VERSION = "1"
"""Bump to invalidate every cached build (the source and demo data are hashed as well)."""

_RECIPES = {
    "tunelab/tiny-chat": ("chat", "tiny"),
    "tunelab/tiny-think": ("think", "tiny"),
    "tunelab/bench-chat": ("chat", "bench"),
}

BUILTIN_MODELS = tuple(_RECIPES)


def is_builtin(name: str) -> bool:
    """Whether ``name`` is one of :data:`BUILTIN_MODELS`."""
    return name in _RECIPES


def tunelab_home() -> Path:
    """``$TUNELAB_HOME``, default ``~/.cache/tunelab``."""
    return Path(os.environ.get("TUNELAB_HOME") or "~/.cache/tunelab").expanduser()


@lru_cache(maxsize=1)
def build_fingerprint() -> str:
    """Short hash of everything that determines a build: builder version, its source, demo data."""
    from tunelab.testing.tokenizer import demo_files

    digest = hashlib.sha256(BUILDER_VERSION.encode())
    sources = sorted(Path(__file__).resolve().parent.glob("*.py"))
    for path in sources + demo_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def builtin_model_path(name: str) -> Path:
    """Folder of built-in model ``name``, building it on first use.

    Builds go to ``$TUNELAB_HOME/models/<name>-<fingerprint>``; the folder appears atomically, so
    concurrent processes asking for the same model never see a half-written one.
    """
    if not is_builtin(name):
        raise ModelError(f"unknown built-in model {name!r}", where="model_name_or_path",
                         hint=f"built-in models are: {', '.join(BUILTIN_MODELS)}")
    target = tunelab_home() / "models" / f"{name.replace('/', '--')}-{build_fingerprint()}"
    if not target.is_dir():
        _build_atomically(name, target)
    return target


def _build_atomically(name: str, target: Path) -> None:
    from tunelab.testing.factory import build_tiny_model

    variant, size = _RECIPES[name]
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same parent as the target, so os.rename is an atomic move within one file system.
    scratch = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        build_tiny_model(scratch, variant=variant, size=size)
        os.rename(scratch, target)
    except OSError:
        # Another process finished first (rename onto a non-empty folder fails): theirs wins.
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
