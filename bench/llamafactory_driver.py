"""Runs inside LLaMA-Factory's own virtual environment (it never imports TuneLab): one training
run of the recipe given as argument, timed like bench_train.py times TuneLab (the wall time of
``Trainer.train``, loading and tokenising excluded), then one JSON line::

    VENV/bin/python bench/llamafactory_driver.py recipe.yaml
"""

from __future__ import annotations

import json
import resource
import sys
import time

import torch
import yaml
from transformers import Trainer

from llamafactory.train.tuner import run_exp

MEASURED: dict = {}
_train = Trainer.train


def timed_train(trainer, *args, **kwargs):
    """``Trainer.train`` with a stopwatch, and what it trained on (LLaMA-Factory's own rows)."""
    data = trainer.train_dataset
    MEASURED["samples"] = len(data)
    MEASURED["tokens_lf"] = sum(len(ids) for ids in data["input_ids"])
    MEASURED["dtype"] = str(next(trainer.model.parameters()).dtype)
    MEASURED["gradient_checkpointing"] = bool(getattr(trainer.model, "is_gradient_checkpointing", False))
    start = time.perf_counter()
    try:
        return _train(trainer, *args, **kwargs)
    finally:
        MEASURED["train_wall_s"] = time.perf_counter() - start


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        recipe = yaml.safe_load(handle)
    Trainer.train = timed_train  # LLaMA-Factory's SFT trainer inherits train() from Trainer
    run_exp(args=recipe)
    MEASURED["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9, 3)
    if torch.cuda.is_available():
        MEASURED["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 3)
    print("LLAMAFACTORY_RESULT " + json.dumps(MEASURED), flush=True)


if __name__ == "__main__":
    main()
