"""One identity adapter trained per test session with the real CLI, shared by the board-tab
tests (``tunelab train`` on 8 rows of the identity demo, LoRA + trained embeddings/head, until
greedy decoding gives the trained answers), and the answers it was trained on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_NAME = "ident"
IDENTITY = {"name": "Tuney", "author": "TuneLab"}
TRAIN_ROWS = 8


def data_dir() -> Path:
    """The folder the registry's default lookup reads first (dataset_dir's default, from the repo;
    it need not exist: names it does not register come from the packaged demos)."""
    from tunelab.config.data import DataArgs

    return ROOT / DataArgs().dataset_dir


def identity_answers() -> dict[str, str]:
    """question -> trained answer for the rows the adapter saw (placeholders filled in)."""
    from tunelab.data.registry import data_path, resolve

    dataset_dir = data_dir()
    spec, = resolve(["identity"], dataset_dir)
    rows = json.loads(data_path(spec, dataset_dir).read_text(encoding="utf-8"))[:TRAIN_ROWS]
    answers = {}
    for row in rows:
        text = row["output"]
        for key, value in IDENTITY.items():
            text = text.replace("{{" + key + "}}", value)
        answers[row["instruction"]] = text
    return answers


def train_identity_run(workdir: Path, env: dict) -> Path:
    """``workdir/saves/ident``, trained once per session (later callers reuse the finished run)."""
    run = workdir / "saves" / RUN_NAME
    manifest = run / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text())["status"] == "completed":
        return run
    cmd = [sys.executable, "-m", "tunelab", "train", str(ROOT / "examples" / "tiny_lora_sft.yaml"),
           f"output_dir={run}", f"max_samples={TRAIN_ROWS}", "num_train_epochs=100", "logging_steps=10",
           "save_steps=1000"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"training the identity adapter failed:\n{proc.stdout}\n{proc.stderr}")
    return run
