"""A Markdown table from bench_train.py's JSON lines (a file, or stdin): one row per model,
method and configuration, the median of its rounds, and each figure's ratio to LLaMA-Factory's
default of the same model and method. ::

    python bench/bench_table.py bench/gpu-results.jsonl
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

PEER = "llamafactory"


def read(lines) -> dict[tuple, list[dict]]:
    runs: dict[tuple, list[dict]] = defaultdict(list)
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        run = json.loads(line)
        if "tokens_per_s" in run:
            runs[(Path(run.get("model", "")).name, run.get("finetuning", "lora"), run["config"])].append(run)
    return runs


def median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def ratio(mine: float | None, theirs: float | None) -> str:
    return f"{mine / theirs:.2f}x" if mine and theirs else "-"


def table(runs: dict[tuple, list[dict]]) -> str:
    memory = "peak_gpu_gb" if any("peak_gpu_gb" in r for rs in runs.values() for r in rs) else "peak_rss_gb"
    head = (f"| model | method | config | rounds | tokens/s | {memory} | MFU | tokens/s vs {PEER} "
            f"| memory vs {PEER} |\n|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for (model, method, config), group in sorted(runs.items()):
        peer = runs.get((model, method, PEER), [])
        speed, mem, util = median(group, "tokens_per_s"), median(group, memory), median(group, "mfu")
        rows.append(f"| {model} | {method} | {config} | {len(group)} | {speed:.1f} | "
                    f"{mem if mem is not None else '-'} | {f'{util:.1%}' if util is not None else '-'} | "
                    f"{ratio(speed, median(peer, 'tokens_per_s'))} | {ratio(mem, median(peer, memory))} |")
    return "\n".join(rows)


def main() -> None:
    source = open(sys.argv[1], encoding="utf-8") if len(sys.argv) > 1 else sys.stdin
    runs = read(source)
    print(table(runs) if runs else "no runs with figures in the input")


if __name__ == "__main__":
    main()
