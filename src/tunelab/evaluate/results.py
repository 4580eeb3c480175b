"""One evaluation's record (``<dir>/eval/<name>.json``) and the tables printed from records."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

EVAL_DIR = "eval"


@dataclass
class EvalRecord:
    """What was evaluated (kind, data or tasks), on which model and adapters, with which settings
    and package versions, the metrics, and how long it took."""

    kind: str  # predict | perplexity | benchmark
    name: str  # the file's stem, e.g. predict_identity
    target: str  # what the user named: a run, a recipe or a model
    label: str  # the short name tables show
    model: str
    adapters: list[str]
    settings: dict[str, Any]
    metrics: dict[str, float]
    duration_s: float
    versions: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    status: str = "completed"  # or "interrupted" (the metrics cover the rows done)
    path: str | None = None

    def write(self, folder: Path) -> Path:
        """Write ``folder/eval/<name>.json`` (atomically) and remember where."""
        target = Path(folder) / EVAL_DIR / f"{self.name}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        self.path = str(target)
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        tmp.replace(target)
        return target


def read_record(path: str | Path) -> EvalRecord:
    return EvalRecord(**json.loads(Path(path).read_text(encoding="utf-8")))


def record_name(kind: str, what: list[str]) -> str:
    """``predict_identity``, ``perplexity_alpaca_en_demo+identity``, ``benchmark_mmlu``: a file
    stem safe on every file system."""
    stem = re.sub(r"[^\w.+-]+", "-", "+".join(what))[:80]
    return f"{kind}_{stem}"


def versions(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("tunelab", "torch", "transformers", "peft", *names):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _number(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1000:
        return f"{value:.0f}"
    return "nan" if math.isnan(value) else f"{value:.4f}"


def _rows(records: list[EvalRecord]) -> list[tuple[str, str]]:
    """(evaluation name, metric) in the order they first appear."""
    seen: dict[tuple[str, str], None] = {}
    for record in records:
        for metric in record.metrics:
            if not metric.endswith("_stderr"):  # kept in the record; too much for a table
                seen.setdefault((record.name, metric), None)
    return list(seen)


def format_table(records: list[EvalRecord]) -> str:
    """One row per (evaluation, metric), one column per evaluated model; from the second model
    on, each value is followed by its difference from the first."""
    labels = list(dict.fromkeys(r.label for r in records))
    by = {(r.label, r.name): r for r in records}
    header = ["evaluation", "metric", *[f"{label}" + (" (Δ)" if i else "") for i, label in enumerate(labels)]]
    lines = [header]
    for name, metric in _rows(records):
        cells = [name, metric]
        base = by.get((labels[0], name))
        first = base.metrics.get(metric) if base else None
        for i, label in enumerate(labels):
            record = by.get((label, name))
            value = record.metrics.get(metric) if record else None
            cells.append(_cell(value, first if i else None))
        lines.append(cells)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def _cell(value: Any, first: Any) -> str:
    if value is None:
        return "-"
    if isinstance(first, (int, float)) and isinstance(value, (int, float)):
        return f"{_number(value)} ({value - first:+.4f})"
    return _number(value)
