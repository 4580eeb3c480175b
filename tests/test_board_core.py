"""The board's core: launch safety, typed-path guard, i18n, `tunelab runs`, `tunelab train
--dry-run`, and in a real headless Chromium: login, the adapter picker listing a CLI run, a path
outside the roots refused, and the Chinese interface."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from board_support import (board_env, browser_page, dropdown_options, fill, message, running_board, shot,
                           webui_command)

ROOT = Path(__file__).resolve().parents[1]
# 30 rows, batch 4 -> 8 batches; 3 accumulated batches per step -> 3 steps per epoch (the last
# step takes the 2 left over); 2 epochs -> 6 optimizer steps.
PLAN_KEYS = ["per_device_train_batch_size=4", "gradient_accumulation_steps=3", "num_train_epochs=2",
             "max_samples=30", "cutoff_len=128"]
HAND_TOTAL_STEPS = 6


def tunelab(*args, env, cwd=ROOT, check=True, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "tunelab", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"tunelab {' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def env(tunelab_home):
    return board_env({**os.environ, "TUNELAB_HOME": str(tunelab_home), "TOKENIZERS_PARALLELISM": "false"})


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, env):
    """A run started from the terminal (not the board), in a runs folder of its own."""
    saves = tmp_path_factory.mktemp("board-core") / "saves"
    run = saves / "cli-run"
    tunelab("train", "examples/tiny_lora_sft.yaml", f"output_dir={run}", "additional_target=null", "logging_steps=1",
            "save_steps=3", *PLAN_KEYS, env=env)
    return run


# --- launch safety (no browser needed) -------------------------------------------------------

@pytest.mark.parametrize("flags, named", [(["--host", "0.0.0.0"], "--host"), (["--share"], "--share")])
def test_webui_refuses_to_leave_loopback_without_a_login(env, tmp_path, flags, named):
    proc = subprocess.run(webui_command("--port", "9", *flags), capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and named in lines[0] and "--auth user:password" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "Running on" not in proc.stdout + proc.stderr


def test_auth_file_errors_name_the_line(env, tmp_path):
    bad = tmp_path / "users.txt"
    bad.write_text("# board users\nalice:secret\nbob\n")
    proc = subprocess.run(webui_command("--auth-file", str(bad)), capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and f"{bad} line 3" in proc.stderr and "user:password" in proc.stderr


def test_typed_paths_must_stay_under_the_roots(tmp_path, monkeypatch):
    from tunelab.errors import ConfigError
    from tunelab.ui.context import BoardContext

    work, other, outside = tmp_path / "work", tmp_path / "other", tmp_path / "outside"
    for folder in (work, other, outside):
        folder.mkdir()
    (work / "escape").symlink_to(outside)
    monkeypatch.chdir(work)
    ctx = BoardContext(roots=[work, other])
    assert ctx.resolve_path("saves/run", "output dir") == work / "saves" / "run"
    assert ctx.resolve_path(str(other / "x"), "export dir") == other / "x"
    for text in ("../outside/x", str(outside), "escape/x", "/etc/passwd"):
        with pytest.raises(ConfigError) as err:
            ctx.resolve_path(text, "output dir")
        assert err.value.where == "output dir" and "outside the folders" in err.value.problem
        assert "--root" in err.value.hint


def test_every_board_string_has_english_and_chinese(tmp_path):
    from tunelab.ui import i18n
    from tunelab.ui.app import build_board
    from tunelab.ui.context import BoardContext

    build_board(BoardContext(roots=[tmp_path], runs_dir=tmp_path / "saves"))  # registers every tab's strings
    cjk = re.compile(r"[\u4e00-\u9fff]")
    keys = i18n.keys()
    assert {"train.start", "train.abort", "train.resume", "train.continue", "top.model", "tab.train"} <= set(keys)
    for key in keys:
        en, zh = i18n.both(key)
        if key.startswith("key."):  # a recipe key's label is the key itself in both languages
            assert en == zh
            continue
        assert en.strip() and cjk.search(zh), f"{key}: no Chinese text in {zh!r}"


# --- the same actions from a terminal ---------------------------------------------------------

def test_runs_lists_a_cli_run_with_its_numbers(cli_run, env):
    events = [json.loads(line) for line in (cli_run / "events.jsonl").read_text().splitlines()]
    last_log = [e for e in events if e["type"] == "log"][-1]
    rows = json.loads(tunelab("runs", "--json", "--runs-dir", cli_run.parent, env=env).stdout)
    assert len(rows) == 1
    row = rows[0]
    assert (row["name"], row["model"], row["stage"], row["finetuning_type"], row["status"]) == (
        "cli-run", "tunelab/tiny-chat", "sft", "lora", "completed")
    assert (row["step"], row["total_steps"]) == (HAND_TOTAL_STEPS, HAND_TOTAL_STEPS)
    assert row["loss"] == last_log["loss"] and row["created_at"]
    table = tunelab("runs", "--runs-dir", cli_run.parent, env=env).stdout.splitlines()
    assert table[0].split() == ["name", "model", "stage", "method", "status", "steps", "last", "loss", "started"]
    assert table[1].split()[:7] == ["cli-run", "tunelab/tiny-chat", "sft", "lora", "completed",
                                    f"{HAND_TOTAL_STEPS}/{HAND_TOTAL_STEPS}", f"{last_log['loss']:.4f}"]


def test_dry_run_plans_like_the_real_run_without_loading_the_model(cli_run, env, tmp_path):
    from tunelab.model import resolve_model_path

    # A model folder without weights: the dry run must not need them.
    model = tmp_path / "no-weights"
    shutil.copytree(resolve_model_path("tunelab/tiny-chat"), model)
    for weights in model.glob("*.safetensors"):
        weights.unlink()
    out = tunelab("train", "examples/tiny_lora_sft.yaml", f"model_name_or_path={model}", *PLAN_KEYS,
                  f"output_dir={tmp_path / 'never'}", "--dry-run", env=env).stdout
    real = [json.loads(line) for line in (cli_run / "events.jsonl").read_text().splitlines()]
    real_total = next(e["total_steps"] for e in real if e["type"] == "train_begin")
    assert real_total == HAND_TOTAL_STEPS
    assert f"total steps: {HAND_TOTAL_STEPS} (2 epochs x 3 steps)" in out
    assert "samples: 30" in out and "= 12 rows per step" in out
    assert "--- resolved recipe" in out and "gradient_accumulation_steps: 3" in out
    assert "Memory estimate for" in out and "total peak" in out
    assert not (tmp_path / "never").exists()
    capped = tunelab("train", "examples/tiny_lora_sft.yaml", *PLAN_KEYS, "max_steps=4", "--dry-run", env=env).stdout
    assert "total steps: 4 (max_steps=4 wins over num_train_epochs=2" in capped


# --- in the browser ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def board(cli_run, env):
    """The board (no login, loopback) on the CLI run's runs folder."""
    with running_board(ROOT, env, "--runs-dir", str(cli_run.parent), "--root", str(cli_run.parent)) as running:
        yield running


def test_page_refuses_without_the_login(env, tmp_path):
    import urllib.error
    import urllib.request

    with running_board(tmp_path, env, "--auth", "ada:lovelace") as guarded, browser_page() as page:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(guarded.url + "config", timeout=10)
        assert refused.value.code == 401
        page.goto(guarded.url)
        page.get_by_role("button", name="Login").wait_for()
        assert page.locator("#train-stage").count() == 0
        page.get_by_label("username").fill("ada")
        page.get_by_label("password").fill("wrong")
        page.get_by_role("button", name="Login").click()
        page.get_by_text("Incorrect").first.wait_for()
        shot(page, "board-login-refused")
        assert page.locator("#train-stage").count() == 0
        page.get_by_label("username").fill("ada")  # the login page clears it after a refusal
        page.get_by_label("password").fill("lovelace")
        page.get_by_role("button", name="Login").click()
        page.locator("#train-stage").wait_for()
        shot(page, "board-login-accepted")


def test_adapter_picker_lists_a_run_started_from_the_cli(board):
    with browser_page() as page:
        page.goto(board.url)
        options = dropdown_options(page, "top-adapters")
        shot(page, "board-adapter-picker")
    step = f"step {HAND_TOTAL_STEPS}/{HAND_TOTAL_STEPS}"
    assert f"cli-run · tunelab/tiny-chat · lora · sft · completed · {step}" in options
    assert {"cli-run/checkpoint-3 · completed", "cli-run/checkpoint-6 · completed"} <= set(options)


def test_a_typed_path_outside_the_roots_is_refused(board, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside-the-roots")
    with browser_page() as page:
        page.goto(board.url)
        fill(page, "train-output-dir", str(outside / "run"))
        page.locator("#train-cmd").click()
        page.locator("#train-message").get_by_text("outside the folders").wait_for()
        shot(page, "board-path-refused")
        assert str(outside) in message(page) and "output_dir" not in page.locator("#train-yaml").inner_text()
    assert not any(outside.iterdir())


def test_the_chinese_interface_renders(board):
    with browser_page() as page:
        page.goto(board.url)
        page.locator("#train-start").wait_for()
        assert page.locator("#train-start").inner_text().strip() == "Start"
        page.locator("#top-lang input").click()
        page.get_by_role("option", name="中文").click()
        page.get_by_role("tab", name="训练").wait_for()
        page.locator("#train-start").get_by_text("开始").wait_for()
        shot(page, "board-zh")
        assert page.locator("#train-resume").inner_text().strip() == "恢复此运行"
        assert "从适配器继续" in page.locator("#train-continue").inner_text()
        assert page.get_by_text("运行目录下的所有运行和检查点").count() == 1
