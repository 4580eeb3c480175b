"""``dataset_info.json``: LLaMA-Factory's dataset registry, read into :class:`DatasetSpec`.

The schema and its defaults mirror LLaMA-Factory's ``DatasetAttr`` so existing registries load
unchanged; unknown keys are rejected with the closest valid name because a misspelt
``colums`` would otherwise silently fall back to the defaults.

A dataset name is looked up first in ``<dataset_dir>/dataset_info.json`` (the recipe's folder,
``data`` by default, as in LLaMA-Factory), then in the demo datasets packaged with TuneLab
(``tunelab/resources/data``): the user's registry wins, and the demos work from any folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.errors import DataError

FORMATTINGS = ("alpaca", "sharegpt", "openai")
REGISTRY_FILE = "dataset_info.json"


@dataclass
class Columns:
    """Row keys that hold each part of a sample (LLaMA-Factory's ``columns``)."""

    prompt: str | None = "instruction"
    query: str | None = "input"
    response: str | None = "output"
    history: str | None = None
    messages: str | None = "conversations"
    system: str | None = None
    tools: str | None = None
    images: str | None = None
    videos: str | None = None
    audios: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    kto_tag: str | None = None


@dataclass
class Tags:
    """Keys and role names inside sharegpt/openai messages (LLaMA-Factory's ``tags``)."""

    role_tag: str = "from"
    content_tag: str = "value"
    user_tag: str = "human"
    assistant_tag: str = "gpt"
    observation_tag: str = "observation"
    function_tag: str = "function_call"
    system_tag: str = "system"


# OpenAI-style messages use these names; LLaMA-Factory users usually spell them out in ``tags``,
# we make them the default so a plain ``{"messages": [{"role": ..., "content": ...}]}`` file works.
OPENAI_TAGS = Tags("role", "content", "user", "assistant", "tool", "function_call", "system")


@dataclass
class DatasetSpec:
    """One registry entry. Exactly one of the ``*_url`` / ``file_name`` keys says where rows live."""

    name: str
    file_name: str | None = None
    hf_hub_url: str | None = None
    ms_hub_url: str | None = None
    om_hub_url: str | None = None
    script_url: str | None = None
    cloud_file_name: str | None = None
    file_sha1: str | None = None  # older LLaMA-Factory registries carry it; accepted, unused
    formatting: str = "alpaca"
    ranking: bool = False
    subset: str | None = None
    split: str = "train"
    folder: str | None = None
    num_samples: int | None = None
    columns: Columns = field(default_factory=Columns)
    tags: Tags = field(default_factory=Tags)
    given_columns: tuple[str, ...] = ()  # which columns the entry set explicitly
    registry_dir: str | None = None  # set for packaged demos: file_name is relative to it

    @property
    def where(self) -> str:
        """``dataset_info.json`` entry name for error messages."""
        return f"{REGISTRY_FILE} entry '{self.name}'"


_TOP_KEYS = [f.name for f in dataclasses.fields(DatasetSpec)
             if f.name not in ("name", "given_columns", "registry_dir")]


def _suggest(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _check_keys(given: dict, known: list[str], where: str, what: str) -> None:
    unknown = [k for k in given if k not in known]
    if unknown:
        named = "; ".join(f"'{k}'{_suggest(k, known)}" for k in unknown)
        raise DataError(f"unknown {what} {named}", where=where,
                        hint=f"valid {what}s: {', '.join(known)}")


def _sub_section(cls: type, value: Any, where: str, what: str, base: Any = None) -> Any:
    """Build Columns/Tags from an entry's dict, starting from ``base`` defaults."""
    if value is None:
        return base if base is not None else cls()
    if not isinstance(value, dict):
        raise DataError(f"'{what}' must be a mapping, got {type(value).__name__}", where=where)
    known = [f.name for f in dataclasses.fields(cls)]
    _check_keys(value, known, where, f"{what} key")
    start = dataclasses.asdict(base) if base is not None else {}
    return cls(**{**start, **value})


def parse_entry(name: str, entry: Any, registry_path: str) -> DatasetSpec:
    """One ``dataset_info.json`` entry as a :class:`DatasetSpec` (DataError naming file and key)."""
    where = f"{registry_path}: entry '{name}'"
    if not isinstance(entry, dict):
        raise DataError(f"must be a mapping of keys, got {type(entry).__name__}", where=where)
    _check_keys(entry, _TOP_KEYS, where, "key")
    formatting = entry.get("formatting", "alpaca")
    if formatting not in FORMATTINGS:
        raise DataError(f"unknown formatting {formatting!r}{_suggest(str(formatting), list(FORMATTINGS))}",
                        where=where, hint=f"use one of: {', '.join(FORMATTINGS)}")
    columns = _default_columns(formatting)
    columns = _sub_section(Columns, entry.get("columns"), where, "columns", columns)
    tags = OPENAI_TAGS if formatting == "openai" else Tags()
    tags = _sub_section(Tags, entry.get("tags"), where, "tags", tags)
    plain = {k: v for k, v in entry.items() if k not in ("columns", "tags")}
    spec = DatasetSpec(name=name, **plain, columns=columns, tags=tags,
                       given_columns=tuple(entry.get("columns") or ()))
    _check_source(spec, where)
    return spec


def _default_columns(formatting: str) -> Columns:
    if formatting == "openai":
        return Columns(prompt=None, query=None, response=None, messages="messages")
    return Columns()


def _check_source(spec: DatasetSpec, where: str) -> None:
    sources = [k for k in ("file_name", "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url",
                           "cloud_file_name") if getattr(spec, k)]
    if not sources:
        raise DataError("says nothing about where the rows are", where=where,
                        hint="add \"file_name\": \"my_data.json\" (a file or folder next to "
                        "dataset_info.json) or \"hf_hub_url\": \"org/name\"")
    if spec.num_samples is not None and (not isinstance(spec.num_samples, int) or spec.num_samples < 1):
        raise DataError(f"'num_samples' must be a positive integer, got {spec.num_samples!r}", where=where)


def registry_path(dataset_dir: str | Path) -> Path:
    """Where ``dataset_info.json`` is expected for a dataset folder."""
    return Path(dataset_dir) / REGISTRY_FILE


def load_registry(dataset_dir: str | Path) -> dict[str, DatasetSpec]:
    """Every entry of ``<dataset_dir>/dataset_info.json`` by name.

    Raises DataError for a missing file (saying where it looked), invalid JSON (line and
    column), an unknown formatting and unknown keys (with the closest valid key).
    """
    path = registry_path(dataset_dir)
    if not path.is_file():
        raise DataError(f"no {REGISTRY_FILE} found (looked for {path.resolve()})",
                        where=f"dataset_dir '{dataset_dir}'",
                        hint="set dataset_dir to the folder holding dataset_info.json, "
                        "e.g. dataset_dir: data")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                        where=str(path), hint="check for a missing comma or a trailing comma") from None
    if not isinstance(raw, dict):
        raise DataError("must be a JSON object mapping dataset names to entries", where=str(path))
    return {name: parse_entry(name, entry, str(path)) for name, entry in raw.items()}


def data_path(spec: DatasetSpec, dataset_dir: str | Path) -> Path:
    """The local file or folder of ``spec`` (its ``file_name`` beside the registry it came from)."""
    return Path(spec.registry_dir or dataset_dir) / (spec.file_name or "")


def demo_registry() -> dict[str, DatasetSpec]:
    """The demo datasets packaged with TuneLab, each pointing at its packaged file."""
    from tunelab.resources import demo_data_dir

    folder = demo_data_dir()
    return {name: dataclasses.replace(spec, registry_dir=str(folder))
            for name, spec in load_registry(folder).items()}


def available_datasets(dataset_dir: str | Path) -> dict[str, DatasetSpec]:
    """Every dataset a recipe can name: the packaged demos, then ``dataset_dir``'s (which win).

    A ``dataset_dir`` without ``dataset_info.json`` adds nothing; a broken one raises DataError.
    """
    own = load_registry(dataset_dir) if registry_path(dataset_dir).is_file() else {}
    return {**demo_registry(), **own}


def resolve(names: list[str] | str, dataset_dir: str | Path) -> list[DatasetSpec]:
    """Specs for the given dataset names (a list, or a comma-separated string), in order.

    Each name comes from ``<dataset_dir>/dataset_info.json`` when that file registers it, else from
    the packaged demo datasets; a name in neither is a DataError naming both places.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    registry = available_datasets(dataset_dir)
    specs = []
    for name in names:
        if name not in registry:
            raise _not_registered(name, dataset_dir, registry)
        specs.append(registry[name])
    return specs


def _not_registered(name: str, dataset_dir: str | Path, registry: dict[str, DatasetSpec]) -> DataError:
    from tunelab.resources import demo_data_dir

    own = registry_path(dataset_dir)
    yours = sorted(n for n, spec in registry.items() if not spec.registry_dir)
    demos = sorted(n for n, spec in registry.items() if spec.registry_dir)
    state = "" if own.is_file() else " (no such file)"
    return DataError(
        f"dataset '{name}' is not registered{_suggest(name, list(registry))}: looked in "
        f"{own}{state}, then in the packaged demo datasets ({registry_path(demo_data_dir())})",
        where=str(own),
        hint=f"registered in {own}: {', '.join(yours) or '(none)'}; packaged demos: "
             f"{', '.join(demos)}. Add an entry for it to {own} (or set dataset_dir to the "
             "folder whose dataset_info.json registers it).")
