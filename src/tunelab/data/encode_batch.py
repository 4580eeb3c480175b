"""Encoding many samples, in this process or in ``preprocessing_num_workers`` processes."""

from __future__ import annotations

import multiprocessing

from tunelab.data.conversation import TextSample
from tunelab.data.convert import RowError
from tunelab.data.encode import encode_pretrain, encode_supervised
from tunelab.data.encode_stages import STAGE_ENCODERS
from tunelab.data.kinds import sample_kind
from tunelab.data.report import Problem

# Encoding costs ~0.5 ms a sample while a spawned worker takes seconds to import transformers:
# below this many samples per worker, extra processes cost more than they save.
_MIN_PER_WORKER = 10_000
_worker_tokenizer = None


def encode_one(sample, tokenizer, options: dict):
    """``("ok", row)``, ``("dropped", None)`` after truncation, or ``("bad", Problem)``."""
    kind = sample_kind(options["stage"])
    try:
        if kind == "text" or isinstance(sample, TextSample):
            return "ok", encode_pretrain(sample, tokenizer)
        if kind in STAGE_ENCODERS:
            row = STAGE_ENCODERS[kind](sample, tokenizer, options)
            return ("ok", row) if row is not None else ("dropped", None)
        row = encode_supervised(sample, tokenizer, cutoff_len=options["cutoff_len"],
                                train_on_prompt=options["train_on_prompt"],
                                mask_history=options["mask_history"],
                                enable_thinking=options["enable_thinking"],
                                default_system=options["default_system"])
    except RowError as exc:
        return "bad", Problem(sample.source, exc.reason)
    return ("ok", row) if row is not None else ("dropped", None)


def _init_worker(tokenizer) -> None:
    global _worker_tokenizer
    _worker_tokenizer = tokenizer


def _encode_in_worker(args):
    sample, options = args
    return encode_one(sample, _worker_tokenizer, options)


def encode_samples(samples: list, tokenizer, options: dict,
                   workers: int | None = None) -> tuple[list[dict], list[Problem], int]:
    """Encoded rows (in sample order), problems, and how many were dropped by truncation."""
    workers = min(workers or 1, len(samples) // _MIN_PER_WORKER)
    if workers > 1:
        # spawn, not fork: forking after torch/tokenizers threads have started can deadlock
        with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (tokenizer,)) as pool:
            results = pool.map(_encode_in_worker, [(s, options) for s in samples], chunksize=64)
    else:
        results = [encode_one(s, tokenizer, options) for s in samples]
    rows = [value for kind, value in results if kind == "ok"]
    problems = [value for kind, value in results if kind == "bad"]
    dropped = sum(1 for kind, _ in results if kind == "dropped")
    return rows, problems, dropped
