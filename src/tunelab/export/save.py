"""Write the merged model as Hugging Face files: sharded weights + index, configs, tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

SAFE_INDEX = "model.safetensors.index.json"
LEGACY_INDEX = "pytorch_model.bin.index.json"


def save_model_files(model: Any, tokenizer: Any, folder: Path, max_shard_bytes: int,
                     legacy: bool = False) -> list[str]:
    """Save weights (sharded), config, generation config and tokenizer; returns the weight files."""
    model.save_pretrained(str(folder), max_shard_size=max_shard_bytes)
    tokenizer.save_pretrained(str(folder))
    _write_chat_template_file(tokenizer, folder)
    if legacy:
        _convert_to_bin(folder)
    _use_default_permissions(folder)
    return weight_files(folder)


def _use_default_permissions(folder: Path) -> None:
    """Give every file the mode the user's umask allows (shards are written owner-only)."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


def _write_chat_template_file(tokenizer: Any, folder: Path) -> None:
    """Keep a chat_template.jinja even where a tokenizer kept it only in tokenizer_config.json."""
    template = getattr(tokenizer, "chat_template", None)
    target = folder / "chat_template.jinja"
    if isinstance(template, str) and not target.exists():
        target.write_text(template, encoding="utf-8")


def weight_files(folder: Path) -> list[str]:
    """Names of the weight files in an export folder, in shard order."""
    names = sorted(p.name for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))
    return names


def _convert_to_bin(folder: Path) -> None:
    """Rewrite safetensors shards as pytorch_model*.bin (export_legacy_format), index included.

    transformers 5 only writes safetensors; saving through it first keeps its weight-name
    handling, and the conversion is a byte-level copy per shard.
    """
    import torch
    from safetensors.torch import load_file

    renames = {}
    for shard in sorted(folder.glob("model*.safetensors")):
        name = shard.name.replace("model", "pytorch_model", 1).replace(".safetensors", ".bin")
        torch.save(load_file(str(shard)), folder / name)
        shard.unlink()
        renames[shard.name] = name
    index = folder / SAFE_INDEX
    if index.is_file():
        data = json.loads(index.read_text())
        data["weight_map"] = {k: renames[v] for k, v in data["weight_map"].items()}
        (folder / LEGACY_INDEX).write_text(json.dumps(data, indent=2) + "\n")
        index.unlink()


def iter_saved_tensors(folder: Path) -> Iterator[tuple[str, Any]]:
    """(name, tensor) for every weight in an export folder, one shard in memory at a time."""
    import torch

    for name in weight_files(folder):
        path = folder / name
        if name.endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():
                    yield key, handle.get_tensor(key)
        else:
            yield from torch.load(path, map_location="cpu", weights_only=True, mmap=True).items()


def read_index(folder: Path) -> dict[str, Any] | None:
    """The shard index of an export (None when the weights fit one file)."""
    for name in (SAFE_INDEX, LEGACY_INDEX):
        if (folder / name).is_file():
            return json.loads((folder / name).read_text())
    return None
