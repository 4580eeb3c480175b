"""Looking into registered datasets without training: which stage a dataset suits, and a page
of its rows as the model will see them (the board's dataset picker and preview)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tunelab.data.convert import RowError, to_sample
from tunelab.data.preview import SamplePreview, preview_sample
from tunelab.data.readers import read_rows
from tunelab.data.registry import available_datasets, resolve


@dataclass
class PreviewRow:
    """One previewed row: where it is, and its preview or why it was skipped."""

    location: str
    view: SamplePreview | None = None
    skipped: str | None = None


def suits_stage(spec, dataset_dir: str | Path, stage: str) -> bool:
    """Whether the dataset's first row converts for ``stage`` (hub datasets: assumed to)."""
    if not spec.file_name:
        return True
    try:
        rows = read_rows(spec, dataset_dir, max_samples=1)
        return bool(rows) and to_sample(rows[0][1], spec, rows[0][0], stage) is not None
    except Exception:  # a bad row or unreadable file suits no stage; `tunelab data validate` says why
        return False


def datasets_for_stage(dataset_dir: str | Path, stage: str) -> list[str]:
    """Names a recipe can use with ``dataset_dir`` (its own and the packaged demos) whose rows
    suit ``stage``, sorted."""
    registry = available_datasets(dataset_dir)
    return sorted(name for name, spec in registry.items() if suits_stage(spec, dataset_dir, stage))


def preview_page(name: str, data_args, stage: str, tokenizer, options: dict | None, page: int,
                 per_page: int) -> list[PreviewRow]:
    """Rows ``page * per_page`` onwards of dataset ``name``, converted and previewed."""
    spec = resolve([name], data_args.dataset_dir)[0]
    start = max(page, 0) * per_page
    rows = read_rows(spec, data_args.dataset_dir, max_samples=start + per_page)[start:]
    result = []
    for location, row in rows:
        try:
            sample = to_sample(row, spec, location, stage, data_args.placeholders)
        except RowError as exc:
            result.append(PreviewRow(location, skipped=exc.reason))
            continue
        result.append(PreviewRow(location, view=preview_sample(sample, tokenizer, options)))
    return result
