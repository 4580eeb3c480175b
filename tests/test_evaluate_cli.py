"""``tunelab eval`` as a user runs it (real subprocesses): the identity adapter the board tests
train (shared: trained once per session) against its base, by predictions, perplexity and a
local lm-evaluation-harness task, in one --compare run; Ctrl-C during predictions; a benchmark
whose dataset lives only on the hub."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from board_tabs_support import ROOT, identity_answers, train_identity_run

TASKS = ROOT / "tests" / "fixtures" / "lm_eval_tasks"
BASE = "tunelab/tiny-chat"


def tunelab_eval(*args, env, timeout=600):
    return subprocess.run([sys.executable, "-m", "tunelab", "eval", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def env(tunelab_home):
    return {**os.environ, "TUNELAB_HOME": str(tunelab_home), "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def run(tmp_path_factory, env):
    folder = tmp_path_factory.getbasetemp() / "board-tabs"  # the board tests' run, if trained already
    folder.mkdir(exist_ok=True)
    return train_identity_run(folder, env)


@pytest.fixture(scope="module")
def compared(run, env, tmp_path_factory):
    """One `tunelab eval --compare BASE RUN` with all three kinds: (stdout, base dir, run dir)."""
    save_dir = tmp_path_factory.mktemp("evals")
    proc = tunelab_eval("--compare", BASE, run, "--predict", "--perplexity", "--dataset", "identity",
                        "--max-samples", 8, "max_new_tokens=64", "--tasks", "tunelab_identity_mc",
                        "--include-path", TASKS, "--apply-chat-template", "--save-dir", save_dir, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout, save_dir / "tunelab--tiny-chat", run


def record(folder, name):
    return json.loads((Path(folder) / "eval" / f"{name}.json").read_text())


@pytest.mark.slow
def test_predict_scores_the_trained_run_above_the_base(compared):
    _, base_dir, run_dir = compared
    base, tuned = record(base_dir, "predict_identity"), record(run_dir, "predict_identity")
    assert tuned["model"] == BASE and tuned["adapters"] == [str(run_dir)]
    assert tuned["settings"]["datasets"] == ["identity"] and tuned["settings"]["max_samples"] == 8
    assert {"jieba", "nltk", "rouge-chinese", "transformers"} <= set(tuned["versions"])
    assert tuned["duration_s"] > 0 and tuned["status"] == "completed"
    assert tuned["metrics"]["exact_match"] >= 0.9
    for metric in ("bleu-4", "bleu-4-char", "rouge-1", "rouge-2", "rouge-l"):
        assert tuned["metrics"][metric] > base["metrics"][metric] + 20, metric
    # The predictions file, checked against the answers the adapter was trained on.
    rows = [json.loads(line) for line in (run_dir / "eval" / "generated_predictions.jsonl").read_text().splitlines()]
    answers = identity_answers()
    assert len(rows) == 8
    exact = 0
    for row in rows:
        question = next(q for q in answers if f"user\n{q}<|im_end|>" in row["prompt"])
        assert row["label"] == answers[question]
        exact += row["prediction"] == answers[question]
    assert tuned["metrics"]["exact_match"] == pytest.approx(exact / 8)


@pytest.mark.slow
def test_perplexity_of_the_adapter_on_its_data_is_below_the_base(compared):
    import math

    _, base_dir, run_dir = compared
    base, tuned = record(base_dir, "perplexity_identity"), record(run_dir, "perplexity_identity")
    assert tuned["metrics"]["tokens"] == base["metrics"]["tokens"] > 0  # the same labelled tokens
    assert tuned["metrics"]["loss"] < 0.5 * base["metrics"]["loss"]
    assert tuned["metrics"]["perplexity"] == pytest.approx(math.exp(tuned["metrics"]["loss"]))


@pytest.mark.slow
def test_local_lm_eval_task_runs_offline_and_the_fine_tune_scores_higher(compared):
    _, base_dir, run_dir = compared
    base = record(base_dir, "benchmark_tunelab_identity_mc")
    tuned = record(run_dir, "benchmark_tunelab_identity_mc")
    assert tuned["details"]["n-samples"]["tunelab_identity_mc"]["effective"] == 32
    assert tuned["settings"]["apply_chat_template"] is True and "lm-eval" in tuned["versions"]
    assert tuned["metrics"]["tunelab_identity_mc/acc"] >= 0.9
    assert tuned["metrics"]["tunelab_identity_mc/acc"] > base["metrics"]["tunelab_identity_mc/acc"]


@pytest.mark.slow
def test_compare_prints_one_table_with_deltas(compared):
    stdout, base_dir, run_dir = compared
    base, tuned = record(base_dir, "predict_identity"), record(run_dir, "predict_identity")
    lines = stdout.splitlines()
    assert lines[0].split() == ["evaluation", "metric", "tiny-chat", "ident", "(Δ)"]
    row = next(line for line in lines if line.split()[:2] == ["predict_identity", "rouge-1"])
    b, t = base["metrics"]["rouge-1"], tuned["metrics"]["rouge-1"]
    assert row.split()[2:] == [f"{b:.4f}", f"{t:.4f}", f"({t - b:+.4f})"]
    kinds = {line.split()[0] for line in lines[2:]}
    assert kinds == {"predict_identity", "perplexity_identity", "benchmark_tunelab_identity_mc"}


@pytest.mark.slow
def test_ctrl_c_leaves_the_rows_done_and_says_how_many(env, tmp_path):
    args = [sys.executable, "-m", "tunelab", "eval", BASE, "--predict", "--dataset", "alpaca_en_demo",
            "--max-samples", "200", "max_new_tokens=64", "max_batch_size=1", "--save-dir", str(tmp_path)]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    predictions = tmp_path / "tunelab--tiny-chat" / "eval" / "generated_predictions.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if predictions.is_file() and len(predictions.read_text().splitlines()) >= 2:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    # 200 rows of 64 tokens take ~25 s one at a time on a quiet machine: the signal lands mid-way
    assert 2 <= len(rows) < 200 and [r["index"] for r in rows] == list(range(len(rows)))
    assert f"interrupted: {len(rows)} of 200 rows done" in stderr and str(predictions) in stderr
    saved = record(predictions.parent.parent, "predict_alpaca_en_demo")
    assert saved["status"] == "interrupted" and saved["details"]["rows_done"] == len(rows)
    assert saved["metrics"]["rows"] == len(rows)


@pytest.mark.slow
def test_a_hub_only_task_says_which_dataset_and_where_to_put_it(env):
    proc = tunelab_eval(BASE, "--tasks", "mmlu_anatomy", env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "task 'mmlu_anatomy' needs the dataset 'cais/mmlu' (subset 'anatomy')" in proc.stderr
    assert "HF_DATASETS_CACHE" in proc.stderr and "--include-path" in proc.stderr
