"""Rows from local files, folders of files, or the Hugging Face Hub.

Every row comes with a location ``"file:row"`` (1-based: the line for jsonl/csv/txt, the list
index for json, the record index for parquet/arrow) so that a problem found later can point the
user at the exact row to fix.
"""

from __future__ import annotations

import csv
import io
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
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON lines saved with a .json name (LLaMA-Factory accepts it)
            return _read_jsonl(path)
        raise DataError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                        where=str(path)) from None
    except RecursionError:
        raise DataError(_TOO_DEEP, where=str(path), hint=_FLAT_ROWS) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise DataError(f"a .json data file must hold a list of objects, got {type(data).__name__}",
                        where=str(path))
    return [(f"{path}:{i}", _as_row(item)) for i, item in enumerate(data, 1)]


# Python's json module recurses once per nesting level and gives up near the interpreter's limit.
_TOO_DEEP = "JSON is nested too deeply to read (Python's JSON reader stops near 1000 levels)"
_FLAT_ROWS = ("a data file holds a list of rows, each an object of named fields (strings, or "
              "lists of messages): a few levels deep")


def read_text(path: Path) -> str:
    """The whole file as text; DataError naming the line and byte when it is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # a UTF-8 byte-order mark (Windows editors) is dropped
    except UnicodeDecodeError as exc:
        raise _not_utf8_error(path, data, exc) from None


def _not_utf8_error(path: Path, data: bytes, exc: UnicodeDecodeError) -> DataError:
    if b"\x00" in data[:8192]:
        return DataError("is a binary file, not text (it holds NUL bytes)", where=str(path),
                         hint="data files are UTF-8 text (json, jsonl, csv, txt) or parquet/arrow "
                         "with the matching extension; check that file_name points at the right file")
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return DataError(f"is not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column "
                     f"{column} cannot be decoded (the file is probably Latin-1 or Windows-1252)",
                     where=str(path),
                     hint=f"save it as UTF-8, e.g. `iconv -f latin1 -t utf-8 '{path}' > NEW_FILE` "
                     "and point file_name at the new file")


def _as_row(item: object) -> dict:
    if isinstance(item, dict):
        return item
    return {ROW_ERROR_KEY: f"row is a {type(item).__name__}, not an object with named fields"}


def _read_jsonl(path: Path) -> Rows:
    rows = []
    for line_no, line in enumerate(_lines(path), 1):
        if line.strip():
            rows.append((f"{path}:{line_no}", _parse_line(line)))
    return rows


def _parse_line(line: str) -> dict:
    try:
        return _as_row(json.loads(line))
    except json.JSONDecodeError as exc:
        return {ROW_ERROR_KEY: f"not valid JSON ({exc.msg}, column {exc.colno})"}
    except RecursionError:
        return {ROW_ERROR_KEY: _TOO_DEEP}


def _read_csv(path: Path) -> Rows:
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    try:
        # reader.line_num after reading a record is its last physical line: right for one-line rows
        return [(f"{path}:{reader.line_num}", dict(row)) for row in reader]
    except csv.Error as exc:
        raise DataError(f"not valid CSV at line {reader.line_num}: {exc}", where=str(path)) from None


def _read_txt(path: Path) -> Rows:
    return [(f"{path}:{n}", {"text": line}) for n, line in enumerate(_lines(path), 1) if line.strip()]


def _lines(path: Path) -> list[str]:
    # Only \n ends a line: str.splitlines would also split at U+2028 inside a JSON string.
    return [line.removesuffix("\r") for line in read_text(path).split("\n")]


def _read_parquet(path: Path) -> Rows:
    import pyarrow.parquet as pq  # datasets' own backend; reading directly avoids its disk cache

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
        raise DataError(f"not a readable Parquet file ({exc})", where=str(path)) from None
    return [(f"{path}:{i}", row) for i, row in enumerate(table.to_pylist(), 1)]


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
                     hint="download the dataset files (e.g. `hf download --repo-type "
                     "dataset ...` on a connected machine), put them next to dataset_info.json and "
                     "register them with \"file_name\"")
