"""Predict throughput: rows/s of ``tunelab eval --predict`` against one-at-a-time ``generate``.

Runs ``tunelab eval MODEL --predict`` (the chat engine batches the rows in flight into shared
``generate`` calls) on the first ``--rows`` rows of a dataset, then answers the very same
prompts (read back from its generated_predictions.jsonl) with plain transformers, one row at a
time: ``model.generate`` greedy, same ``max_new_tokens``, same stop tokens. Both time the
generation only (the model is loaded first). Prints one JSON line per side, then the ratio::

    python bench/bench_predict.py                      # tunelab/bench-chat (~32M params) on CPU
    python bench/bench_predict.py --model DIR --rows 64 --max-new-tokens 128
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_tunelab(opts: argparse.Namespace, out: Path) -> dict:
    cmd = [sys.executable, "-m", "tunelab", "eval", opts.model, "--predict", "--dataset", opts.dataset,
           "--max-samples", str(opts.rows), f"max_new_tokens={opts.max_new_tokens}",
           f"max_batch_size={opts.batch}", "--save-dir", str(out), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": str(opts.threads), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"tunelab eval failed:\n{proc.stderr}")
    record = json.loads(proc.stdout)[0]
    rows = [json.loads(line) for line in Path(record["details"]["predictions"]).read_text().splitlines()]
    tokens = sum(r["tokens"] for r in rows)
    seconds = record["details"]["generation_s"]
    return {"side": "tunelab_eval_predict", "rows": len(rows), "completion_tokens": tokens,
            "wall_s": seconds, "rows_per_s": round(len(rows) / seconds, 3),
            "tokens_per_s": round(tokens / seconds, 1), "max_batch_size": opts.batch, "_rows": rows}


def run_plain(opts: argparse.Namespace, rows: list[dict]) -> dict:
    """The baseline: the same prompts, one ``generate`` per row."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.model.loader import resolve_model_path

    torch.set_num_threads(opts.threads)
    path = resolve_model_path(opts.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    stops = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id]
    tokens, same = 0, 0
    start = time.perf_counter()
    for row in rows:
        ids = tokenizer(row["prompt"], add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=opts.max_new_tokens, do_sample=False,
                                 eos_token_id=[s for s in stops if s is not None],
                                 pad_token_id=tokenizer.pad_token_id)
        answer = out[0, ids["input_ids"].shape[1]:]
        tokens += int((~torch.isin(answer, torch.tensor(stops))).sum())
        same += tokenizer.decode(answer, skip_special_tokens=True) == row["prediction"]
    wall = time.perf_counter() - start
    return {"side": "plain_generate_one_at_a_time", "rows": len(rows), "completion_tokens": tokens,
            "wall_s": round(wall, 3), "rows_per_s": round(len(rows) / wall, 3),
            "tokens_per_s": round(tokens / wall, 1), "answers_equal_to_tunelab": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tunelab/bench-chat")
    parser.add_argument("--dataset", default="alpaca_en_demo")
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16, help="max_batch_size of tunelab's engine")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads on both sides")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        ours = run_tunelab(opts, Path(out))
        rows = ours.pop("_rows")
        print(json.dumps({**ours, "model": opts.model, "max_new_tokens": opts.max_new_tokens}), flush=True)
        plain = run_plain(opts, rows)
        print(json.dumps({**plain, "model": opts.model, "max_new_tokens": opts.max_new_tokens}), flush=True)
    ratio = ours["rows_per_s"] / plain["rows_per_s"]
    print(json.dumps({"tunelab_over_plain_rows_per_s": round(ratio, 2)}), flush=True)


if __name__ == "__main__":
    main()
