"""Registered datasets -> tokenised, split, packed ``datasets.Dataset`` objects, cached by fingerprint.

``prepare_datasets`` is the one entry point the trainers use. It reads and validates every row
(skipping and reporting bad ones), encodes with the run's chat template and masks, splits off an
eval set, packs, and stores the result under ``$TUNELAB_HOME/cache/tokenized/<fingerprint>`` so
an unchanged second run loads it instead of tokenising again.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunelab.data.cache import (file_signature, fingerprint, load_prepared, save_prepared,
                                tokenized_cache_dir, tokenizer_signature)
from tunelab.data.collate import PackedCollator, PaddingCollator, concat_blocks, pack_rows, split_long
from tunelab.data.encode import IGNORE_INDEX
from tunelab.data.encode_batch import encode_samples
from tunelab.data.kinds import sample_kind
from tunelab.data.registry import data_path, resolve
from tunelab.data.report import (Problem, ValidationReport, load_samples, no_valid_rows_error,
                                 required_columns)
from tunelab.data.templates import TemplateInfo, apply_template
from tunelab.errors import DataError

COLUMNS = ("input_ids", "labels", "position_ids")


@dataclass
class PreparedData:
    """Tokenised splits and what happened on the way (``stats``, per-dataset ``reports``)."""

    train: Any
    eval: Any | None
    stats: dict
    fingerprint: str
    reports: list[ValidationReport] = field(default_factory=list)
    template: TemplateInfo | None = None

    def collator(self, pad_token_id: int, flatten: bool = False, padding_free: bool = False):
        """The batch builder these rows need: packed rows (flattened into one row when
        ``flatten``, for varlen attention kernels); unpacked samples either concatenated into one
        padding-free row (``padding_free``) or right-padded."""
        if self.stats.get("packed"):
            return PackedCollator(pad_token_id, flatten=flatten)
        if padding_free:
            return PackedCollator(pad_token_id, flatten=True)
        return PaddingCollator(pad_token_id)


def encoding_options(d, stage: str) -> dict:
    """Every option of DataArgs ``d`` that changes the ids of a sample (part of the fingerprint)."""
    return {"stage": stage, "cutoff_len": d.cutoff_len, "train_on_prompt": d.train_on_prompt,
            "mask_history": d.mask_history, "enable_thinking": d.enable_thinking,
            "default_system": d.default_system}


def resolve_packing(cfg, stage: str) -> bool:
    """``packing: null`` means on for pt (text is concatenated anyway) and off for sft, whose
    batches are padding-free instead: as fast on CPU and sdpa, with a fraction of the memory,
    and a step stays ``batch`` samples (see BENCHMARKS.md). Post-training stages never pack."""
    if sample_kind(stage) not in ("text", "supervised"):
        return False
    return cfg.data.packing if cfg.data.packing is not None else stage == "pt"


def prepare_datasets(cfg, tokenizer, stage: str | None = None) -> PreparedData:
    """Train (and eval) datasets for ``stage`` with columns input_ids, labels, position_ids.

    Raises DataError for unknown datasets, unreadable files, or a dataset with no usable row.
    """
    d, stage = cfg.data, stage or cfg.method.stage
    if not d.dataset:
        raise DataError("no training dataset is set", where="key 'dataset'",
                        hint="name one from dataset_info.json, e.g. dataset: alpaca_en_demo")
    info = apply_template(tokenizer, d.template, d.default_system) if stage != "pt" else None
    if info is not None and info.note:
        print(f"tunelab: note: {info.note}", file=sys.stderr)
    fp = _fingerprint(cfg, tokenizer, stage)
    target = Path(d.tokenized_path) if d.tokenized_path else tokenized_cache_dir(fp)
    if not d.overwrite_cache:
        cached = load_prepared(target)
        if cached is not None:
            return _from_cache(*cached, info, from_path=bool(d.tokenized_path))
    prepared = _build(cfg, tokenizer, stage, fp, info)
    splits = {"train": prepared.train, **({"eval": prepared.eval} if prepared.eval is not None else {})}
    meta = {"fingerprint": fp, "splits": list(splits), "stats": prepared.stats,
            "reports": [dataclasses.asdict(r) for r in prepared.reports]}
    save_prepared(target, splits, meta)
    prepared.stats["cache_dir"] = str(target)
    return prepared


def _fingerprint(cfg, tokenizer, stage: str) -> str:
    d = cfg.data
    names = list(d.dataset) + list(d.eval_dataset or [])
    specs = resolve(names, d.dataset_dir)
    files = {s.name: file_signature(data_path(s, d.dataset_dir)) for s in specs
             if s.file_name and data_path(s, d.dataset_dir).exists()}
    required = required_columns(cfg, stage)
    return fingerprint({
        "datasets": list(d.dataset), "eval_datasets": list(d.eval_dataset or []),
        "specs": [dataclasses.asdict(s) for s in specs], "files": files,
        "tokenizer": tokenizer_signature(tokenizer), "template": d.template,
        "options": encoding_options(cfg.data, stage), "max_samples": d.max_samples,
        "placeholders": d.placeholders, "val_size": d.val_size, "seed": _seed(cfg),
        "packing": resolve_packing(cfg, stage), **({"required": sorted(required)} if required else {})})


def _seed(cfg) -> int:
    try:
        return int(cfg.training_value("seed"))
    except (KeyError, TypeError, ValueError):
        return 42


def _from_cache(splits: dict, meta: dict, info: TemplateInfo | None, from_path: bool) -> PreparedData:
    stats = {**meta["stats"], "cache": "tokenized_path" if from_path else "hit"}
    reports = [ValidationReport(**{**r, "problems": [Problem(**p) for p in r["problems"]]})
               for r in meta.get("reports", [])]
    return PreparedData(splits["train"], splits.get("eval"), stats, meta["fingerprint"], reports, info)


def _read_and_encode(cfg, tokenizer, names: list[str], stage: str, counts: dict) -> tuple[list, list]:
    """Encoded rows of the named datasets and their reports; encode failures join the reports."""
    rows, reports = [], []
    options = encoding_options(cfg.data, stage)
    required = required_columns(cfg, stage)
    for name in names:
        samples, (report,) = load_samples(cfg.data, [name], stage, required=required)
        encoded, problems, dropped = encode_samples(samples, tokenizer, options,
                                                    workers=cfg.data.preprocessing_num_workers)
        report.problems += problems
        report.valid -= len(problems)
        report.dropped_truncated = dropped
        if report.valid == 0:
            raise no_valid_rows_error(report)
        if not encoded:
            raise DataError(f"all {report.valid} usable rows lose every answer token when cut to "
                            f"cutoff_len={cfg.data.cutoff_len}", where=f"dataset '{name}'",
                            hint="raise cutoff_len, or shorten the prompts")
        counts["rows_read"] += report.total
        counts["rows_invalid"] += len(report.problems)
        counts["dropped_truncated"] += dropped
        rows += encoded
        reports.append(report)
    return rows, reports


def _split(rows: list, val_size: float, seed: int) -> tuple[list, list]:
    """Hold out ``val_size`` (a fraction < 1, or a count) of the rows, chosen with ``seed``."""
    if not val_size:
        return rows, []
    n_eval = int(val_size) if val_size >= 1 else max(1, round(val_size * len(rows)))
    if n_eval >= len(rows):
        raise DataError(f"val_size {val_size} leaves no training rows out of {len(rows)}",
                        where="key 'val_size'", hint="use a fraction such as 0.1 or a smaller count")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = set(order[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [rows[i] for i in sorted(held)]


def _shape(rows: list, stage: str, packing: bool, cutoff_len: int) -> list:
    """Rows as the trainer sees them: packed, pre-training blocks, or one sample per row (the
    post-training stages' rows are never packed)."""
    if sample_kind(stage) not in ("text", "supervised"):
        return rows
    if stage == "pt":
        return pack_rows(split_long(rows, cutoff_len), cutoff_len) if packing else concat_blocks(rows, cutoff_len)
    return pack_rows(rows, cutoff_len) if packing else rows


def _to_dataset(rows: list):
    import datasets

    seen = dict.fromkeys(c for r in rows for c in r)  # prompt rows of two datasets may differ
    names = [c for c in COLUMNS if c in seen] + [c for c in seen if c not in COLUMNS]
    columns = {c: [r.get(c) for r in rows] for c in names}
    try:
        return datasets.Dataset.from_dict(columns or {"input_ids": [], "labels": []})
    except Exception as exc:  # pyarrow's type errors name no column
        raise _column_type_error(columns, exc) from None


def _column_type_error(columns: dict, exc: Exception) -> Exception:
    """The DataError naming the column whose values Arrow cannot store together."""
    import datasets

    for name, values in columns.items():
        try:
            datasets.Dataset.from_dict({name: values})
        except Exception as inner:
            kinds = sorted({type(v).__name__ for v in values if v is not None})
            return DataError(f"column '{name}' holds values of different kinds ({', '.join(kinds)}): "
                             f"{inner}", where=f"column '{name}'",
                             hint="give the column one kind of value in every row (e.g. all text)")
    return exc


def _build(cfg, tokenizer, stage: str, fp: str, info: TemplateInfo | None) -> PreparedData:
    d = cfg.data
    counts = {"rows_read": 0, "rows_invalid": 0, "dropped_truncated": 0}
    rows, reports = _read_and_encode(cfg, tokenizer, list(d.dataset), stage, counts)
    if d.eval_dataset:
        eval_rows, eval_reports = _read_and_encode(cfg, tokenizer, list(d.eval_dataset), stage, counts)
        reports += eval_reports
    else:
        rows, eval_rows = _split(rows, d.val_size, _seed(cfg))
    packing = resolve_packing(cfg, stage)
    train = _shape(rows, stage, packing, d.cutoff_len)
    evals = _shape(eval_rows, stage, False, d.cutoff_len) if eval_rows else None
    stats = {**counts, "samples": len(rows), "eval_samples": len(eval_rows), "packed": packing,
             "train_rows": len(train), **_token_counts(train), "cache": "miss"}
    if packing:
        stats["packed_rows"] = len(train)
    return PreparedData(_to_dataset(train), _to_dataset(evals) if evals else None, stats, fp, reports, info)


def _token_counts(rows: list) -> dict:
    """Tokens fed and tokens trained (the first label of a row is never a target)."""
    if rows and "chosen_ids" in rows[0]:  # pairs: each side is fed once with the prompt
        total = sum(2 * len(r["prompt_ids"]) + len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in rows)
        return {"total_tokens": total, "trainable_tokens": total - sum(2 * len(r["prompt_ids"]) for r in rows)}
    if rows and "completion_ids" in rows[0]:  # tagged answers (kto): prompt + answer once each
        trained = sum(len(r["completion_ids"]) for r in rows)
        return {"total_tokens": trained + sum(len(r["prompt_ids"]) for r in rows), "trainable_tokens": trained}
    if not rows or "labels" not in rows[0]:
        return {"total_tokens": sum(len(r.get("input_ids", ())) for r in rows), "trainable_tokens": 0}
    total = sum(len(r["input_ids"]) for r in rows)
    trainable = sum(sum(1 for label in r["labels"][1:] if label != IGNORE_INDEX) for r in rows)
    return {"total_tokens": total, "trainable_tokens": trainable}
