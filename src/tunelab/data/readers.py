"""Rows from local files, folders of files, or the Hugging Face Hub.

Every row comes with a location ``"file:row"`` (1-based: the line for jsonl/csv/txt, the list
index for json, the record index for parquet/arrow) so that a problem found later can point the
user at the exact row to fix.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from tunelab.data.registry import DatasetSpec, data_path
from tunelab.errors import DataError

# A row that could not even be parsed carries its reason under this key; the converter turns it
# into a counted row problem instead of aborting the whole dataset for one bad line.
ROW_ERROR_KEY = "__tunelab_row_error__"
EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet",
              ".arrow": "arrow", ".txt": "txt"}
Rows = list[tuple[str, dict]]


def read_rows(spec: DatasetSpec, dataset_dir: str | Path, max_samples: int | None = None,
              seed: int = 42) -> Rows:
    """``(location, row)`` pairs of a dataset, after ``num_samples`` then ``max_samples``."""
    if spec.file_name:
        rows = _read_local(data_path(spec, dataset_dir), spec)
    elif spec.hf_hub_url:
        rows = _read_hub(spec)
    else:
        rows = _unsupported_source(spec)
    if spec.num_samples is not None:
        rows = sample_rows(rows, spec.num_samples, seed)
    return rows[:max_samples] if max_samples is not None else rows


def sample_rows(rows: Rows, n: int, seed: int) -> Rows:
    """``n`` rows chosen with a fixed seed; more than available repeats the set (LLaMA-Factory)."""
    rng = random.Random(seed)
    whole, extra = divmod(n, len(rows)) if rows else (0, 0)
    picked = list(range(len(rows))) * whole + rng.sample(range(len(rows)), extra)
    rng.shuffle(picked)
    return [rows[i] for i in picked]


def _unsupported_source(spec: DatasetSpec) -> Rows:
    key = next(k for k in ("ms_hub_url", "om_hub_url", "script_url", "cloud_file_name") if getattr(spec, k))
    raise DataError(f"'{key}' datasets are not supported by TuneLab", where=spec.where,
                    hint="download the files and register them with \"file_name\" "
                    "(a file or folder next to dataset_info.json)")


def _read_local(path: Path, spec: DatasetSpec) -> Rows:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)
        if not files:
            raise DataError(f"folder {path} holds no data files", where=spec.where,
                            hint=f"put files ending in {', '.join(EXTENSIONS)} there")
        return [row for f in files for row in read_file(f)]
    if not path.exists():
        raise DataError(f"data file not found: {path}", where=spec.where,
                        hint="file_name is relative to dataset_dir; check the spelling and the "
                        "dataset_dir setting")
    return read_file(path)


def read_file(path: Path) -> Rows:
    """Rows of one local file, by extension (DataError for an unknown one)."""
    kind = EXTENSIONS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"cannot read files ending in '{path.suffix}'", where=str(path),
                        hint=f"supported: {', '.join(EXTENSIONS)}")
    return _READERS[kind](path)


def _read_json(path: Path) -> Rows:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON lines saved with a .json name (LLaMA-Factory accepts it)
            return _read_jsonl(path)
        raise DataError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                        where=str(path)) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataError(f"a .json data file must hold a list of objects, got {type(data).__name__}",
                        where=str(path))
    return [(f"{path}:{i}", _as_row(item)) for i, item in enumerate(data, 1)]


def _as_row(item: object) -> dict:
    if isinstance(item, dict):
        return item
    return {ROW_ERROR_KEY: f"row is a {type(item).__name__}, not an object with named fields"}


def _read_jsonl(path: Path) -> Rows:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path}:{line_no}", _as_row(json.loads(line))))
            except json.JSONDecodeError as exc:
                rows.append((f"{path}:{line_no}", {ROW_ERROR_KEY: f"not valid JSON ({exc.msg}, column {exc.colno})"}))
    return rows


def _read_csv(path: Path) -> Rows:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        # reader.line_num after reading a record is its last physical line: right for one-line rows
        return [(f"{path}:{reader.line_num}", dict(row)) for row in reader]


def _read_txt(path: Path) -> Rows:
    with path.open(encoding="utf-8") as handle:
        return [(f"{path}:{n}", {"text": line.rstrip("\n")}) for n, line in enumerate(handle, 1) if line.strip()]


def _read_parquet(path: Path) -> Rows:
    import pyarrow.parquet as pq  # datasets' own backend; reading directly avoids its disk cache

    return [(f"{path}:{i}", row) for i, row in enumerate(pq.read_table(path).to_pylist(), 1)]


def _read_arrow(path: Path) -> Rows:
    import datasets

    try:
        table = datasets.Dataset.from_file(str(path))
    except Exception as exc:  # the arrow reader raises several unrelated types
        raise DataError(f"not a readable Arrow file ({exc})", where=str(path)) from None
    return [(f"{path}:{i}", row) for i, row in enumerate(table.to_list(), 1)]


_READERS = {"json": _read_json, "jsonl": _read_jsonl, "csv": _read_csv, "txt": _read_txt,
            "parquet": _read_parquet, "arrow": _read_arrow}


def _read_hub(spec: DatasetSpec) -> Rows:
    import datasets

    url = spec.hf_hub_url
    try:
        table = datasets.load_dataset(url, name=spec.subset, split=spec.split, data_dir=spec.folder)
    except Exception as exc:  # offline, missing, gated: datasets raises many unrelated types
        raise _hub_error(spec, exc) from None
    return [(f"{url}[{spec.split}]:{i}", row) for i, row in enumerate(table.to_list(), 1)]


def _hub_error(spec: DatasetSpec, exc: Exception) -> DataError:
    from tunelab.hub import hub_offline

    offline = hub_offline()
    why = "HF_HUB_OFFLINE=1 is set and it is not in the local cache" if offline else \
        f"the Hugging Face Hub could not be reached or refused it ({type(exc).__name__}: {exc})"
    return DataError(f"could not load hf_hub_url '{spec.hf_hub_url}': {why}", where=spec.where,
                     hint="download the dataset files (e.g. `huggingface-cli download --repo-type "
                     "dataset ...` on a connected machine), put them next to dataset_info.json and "
                     "register them with \"file_name\"")
