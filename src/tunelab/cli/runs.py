"""``tunelab runs``: every run under the runs folder, started from the CLI or the board."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLUMNS = ("name", "model", "stage", "method", "status", "steps", "last loss", "started")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("runs", help="list every run (name, model, stage, method, status, steps, loss)",
                            description="List the runs under a folder, newest first: the data of the "
                            "board's Runs table. A run whose process died shows as interrupted.")
    parser.add_argument("--runs-dir", default="saves", help="folder to search for runs (default: saves)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(func=run)


def run_rows(runs_dir: str | Path) -> list[dict]:
    """One dict per run (RunInfo.as_row), newest first."""
    from tunelab.runs import RunStore

    return [info.as_row() for info in RunStore([runs_dir]).discover()]


def _cells(row: dict) -> tuple[str, ...]:
    steps = f"{row['step']}/{row['total_steps']}" if row["step"] is not None else "-"
    loss = f"{row['loss']:.4f}" if isinstance(row["loss"], (int, float)) else "-"
    return (row["name"], row["model"], row["stage"], row["finetuning_type"], row["status"], steps, loss,
            row["created_at"])


def run(args: argparse.Namespace) -> int:
    rows = run_rows(args.runs_dir)
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print(f"no runs under {args.runs_dir}")
        return 0
    table = [COLUMNS, *(_cells(r) for r in rows)]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(COLUMNS))]
    for line in table:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip())
    return 0
