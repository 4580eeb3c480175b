"""The board end to end in a real headless Chromium on a real `tunelab webui` server: pick the
tiny model and `identity`, preview the data, press Start, watch the run to its end; abort a run
and resume it to the weights of an uninterrupted run.

Extending the scenario: tests later in this module (or in a module that imports ``scenario`` and
``env`` from here) get the ``scenario`` fixture — the running board, its open page, and the run
trained from the page (``scenario.run``, an identity-trained LoRA adapter) — and add their steps
(chat, export, ...) with ``scenario.shot(name)`` screenshots under tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from board_support import (Board, board_env, browser_page, fill, open_accordion, pick, press, running_board, shot,
                           started_run, wait_run_status, wait_step_at_least, wait_text)

# The scenario trains 200 tiny steps (about a minute with start-up) before its first test.
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
TINY = "TuneLab (built-in) · tunelab/tiny-chat"
# 80 identity rows / batch 8 = 10 steps per epoch; 20 epochs = 200 steps (hand count).
NUMBERS = {"key-learning_rate": "5e-3", "key-num_train_epochs": "20", "key-logging_steps": "5",
           "key-save_steps": "100"}
TOTAL_STEPS = 200


@dataclass
class Scenario:
    """The board, its page, and what the steps so far produced."""

    board: Board
    page: object
    saves: Path
    run: Path | None = None
    shots: list[Path] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        path = shot(self.page, f"e2e-{len(self.shots) + 1:02d}-{name}")
        self.shots.append(path)
        return path


@pytest.fixture(scope="module")
def env(tunelab_home):
    return board_env({**os.environ, "TUNELAB_HOME": str(tunelab_home), "TOKENIZERS_PARALLELISM": "false"})


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, env):
    """Open the board, set a run up from the page, press Start and wait for the end."""
    saves = tmp_path_factory.mktemp("board-e2e") / "saves"
    with running_board(ROOT, env, "--runs-dir", str(saves), "--root", str(saves.parent)) as board, \
            browser_page(height=1100) as page:
        s = Scenario(board, page, saves)
        page.goto(board.url)
        page.locator("#train-stage").wait_for()
        s.shot("open")
        _set_up_identity_run(s)
        s.run = started_run(press(page, "train-start", "Started training in"))
        wait_step_at_least(page, s.run.name, 10)
        s.shot("training")
        wait_run_status(page, "completed", s.run.name, timeout_s=600)
        page.locator("#train-loss svg g.mark-line path").first.wait_for()
        page.wait_for_timeout(1500)  # let the chart finish drawing for the screenshot
        s.shot("trained")
        yield s


def _set_up_identity_run(s: Scenario) -> None:
    page = s.page
    pick(page, "top-model", TINY)
    pick(page, "top-method", "lora")
    pick(page, "train-datasets", "identity")
    fill(page, "train-identity-name", "Tuney")
    fill(page, "train-identity-author", "TuneLab")
    page.locator("#train-preview").click()
    page.locator("#train-preview-rows mark.trained").first.wait_for(timeout=120_000)
    s.shot("preview")
    for elem, value in NUMBERS.items():
        fill(page, elem, value)
    open_accordion(page, "LoRA")
    # A random tiny model learns slowly through LoRA alone: train its embeddings and head too.
    fill(page, "key-additional_target", "embed_tokens, lm_head")
    open_accordion(page, "Data")
    fill(page, "key-cutoff_len", "256")
    page.locator("#train-live").get_by_text(f"{TOTAL_STEPS} total steps").wait_for(timeout=120_000)
    page.locator("#train-cmd").click()
    page.locator("#train-command").get_by_text("tunelab train").wait_for()
    s.shot("settings")


def _identity_rows() -> list[dict]:
    from tunelab.resources import demo_data_dir

    return json.loads((demo_data_dir() / "identity.json").read_text(encoding="utf-8"))


def _identity_answer(row: int) -> str:
    rows = _identity_rows()
    return rows[row]["output"].replace("{{name}}", "Tuney").replace("{{author}}", "TuneLab")


def test_preview_marks_exactly_the_answers_as_trained(scenario):
    marks = scenario.page.locator("#train-preview-rows mark.trained").all_inner_texts()
    rows = scenario.page.locator("#train-preview-rows pre.preview-row").all_inner_texts()
    assert len(marks) == len(rows) == 3
    for i, mark in enumerate(marks):
        assert mark == _identity_answer(i) + "<|im_end|>\n"  # the template ends a turn with it
        assert rows[i].startswith("<|im_start|>user\n") and rows[i].endswith(mark)


def test_the_live_line_and_preview_command_show_the_plan_and_recipe(scenario):
    page = scenario.page
    live = page.locator("#train-live").inner_text()
    assert "80 samples → effective batch 8 → 10 steps per epoch → 200 total steps" in live
    assert "Memory: about" in live
    yaml_text = page.locator("#train-yaml").inner_text()
    for line in ("model_name_or_path: tunelab/tiny-chat", "finetuning_type: lora", "dataset: identity",
                 "learning_rate: 0.005", "num_train_epochs: 20.0", "name: Tuney"):
        assert line in yaml_text


def test_start_trains_to_the_end_with_progress_and_loss_chart(scenario):
    page, run = scenario.page, scenario.run
    info = wait_run_status(page, "completed", run.name)
    assert (info["step"], info["total"]) == (str(TOTAL_STEPS), str(TOTAL_STEPS))
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["global_step"] == TOTAL_STEPS
    assert manifest["command"][-1].endswith(".yaml") and "train" in manifest["command"]
    logs = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    logged = [e for e in logs if e["type"] == "log"]
    assert len(logged) == TOTAL_STEPS // 5 and logged[-1]["loss"] < logged[0]["loss"]
    # The chart's line goes through every logged point.
    path = page.locator("#train-loss svg g.mark-line path").first.get_attribute("d")
    assert path.count("L") == len(logged) - 1
    assert "step 200/200 · 100%" in page.locator("#train-progress-info").inner_text()
    assert (run / "adapter_model.safetensors").is_file() and {p.name for p in run.glob("checkpoint-*")} == {
        "checkpoint-100", "checkpoint-200"}


def test_a_new_tab_shows_the_finished_run_as_it_is(scenario):
    second = scenario.page.context.browser.new_page(viewport={"width": 1400, "height": 1100})
    try:
        second.goto(scenario.board.url)
        info = wait_run_status(second, "completed", scenario.run.name, timeout_s=60)
        assert (info["step"], info["total"]) == (str(TOTAL_STEPS), str(TOTAL_STEPS))
        assert second.locator("#train-watch input").input_value().startswith(scenario.run.name)
        shot(second, "e2e-second-tab")
    finally:
        second.close()


def test_abort_leaves_a_checkpoint_and_resume_ends_where_an_uninterrupted_run_does(scenario, env, tmp_path):
    import torch
    from safetensors.torch import load_file

    page = scenario.page
    fill(page, "key-num_train_epochs", "1")
    fill(page, "key-max_steps", "60")
    fill(page, "key-logging_steps", "1")
    fill(page, "key-save_steps", "1000")
    fill(page, "train-output-dir", "")
    page.locator("#train-start").click()
    # The message box may still show the scenario run's start message for a moment: wait for the
    # message that names the new run.
    page.wait_for_function(
        "old => { const m = document.querySelector('#train-message'); const text = m ? m.innerText : '';"
        " return text.includes('Started training in') && !text.includes(old); }",
        arg=str(scenario.run), timeout=60_000)
    run = started_run(page.locator("#train-message").inner_text())
    assert run != scenario.run and run.parent == scenario.run.parent
    wait_step_at_least(page, run.name, 5)
    press(page, "train-abort", "Abort sent")
    info = wait_run_status(page, "interrupted", run.name, timeout_s=120)
    scenario.shot("aborted")
    stopped = json.loads((run / "manifest.json").read_text())["global_step"]
    assert 5 <= stopped < 60 and int(info["step"]) == stopped
    assert [p.name for p in run.glob("checkpoint-*")] == [f"checkpoint-{stopped}"]

    assert started_run(press(page, "train-resume", "Started training in")) == run
    info = wait_run_status(page, "completed", run.name, timeout_s=600)
    scenario.shot("resumed")
    assert info["step"] == "60"

    # The uninterrupted reference: the same recipe from the terminal, in one go.
    recipe = next((scenario.saves / ".board").glob(f"{run.name}-*.yaml"))
    reference = tmp_path / "reference"
    subprocess.run([sys.executable, "-m", "tunelab", "train", str(recipe), f"output_dir={reference}",
                    "resume_from_checkpoint=null"], check=True, env=env, cwd=ROOT, capture_output=True, timeout=600)
    resumed, straight = load_file(run / "adapter_model.safetensors"), load_file(reference / "adapter_model.safetensors")
    assert resumed.keys() == straight.keys()
    for name in resumed:
        assert torch.equal(resumed[name], straight[name]), name


# Chat and export come last, after the abort test: the adapter they pick in the top bar stays
# picked, and the abort test expects a plain new run.
def test_chat_with_the_run_trained_from_the_page_gives_its_trained_answer(scenario):
    page, run = scenario.page, scenario.run
    page.locator("#top-refresh").click()  # the run appeared after the page loaded
    page.locator("#top-adapters input").first.click()
    page.get_by_role("option").filter(has_text=f"{run.name} · tunelab/tiny-chat").first.click()
    page.keyboard.press("Escape")
    page.get_by_role("tab", name="Chat").click()
    page.locator("#chat-load").click()
    assert f"adapters {run.name}" in wait_text(page, "#chat-status", "Loaded")
    page.get_by_text("Sampling settings").click()
    temperature = page.locator("#chat-temperature input[type=number]")
    temperature.fill("0")
    temperature.press("Enter")
    question = next(r for r in _identity_rows() if r["instruction"] == "Who are you?")
    page.locator("#chat-input textarea").fill(question["instruction"])
    page.locator("#chat-send").click()
    wait_text(page, "#chat-bot", _identity_answer(_identity_rows().index(question)))
    scenario.shot("chat")


def test_export_the_run_trained_from_the_page_and_verification_passes(scenario):
    page = scenario.page
    page.get_by_role("tab", name="Export").click()
    out = scenario.saves.parent / "exports" / scenario.run.name
    page.locator("#export-dir textarea, #export-dir input").first.fill(str(out))
    page.locator("#export-start").click()
    result = wait_text(page, "#export-result", "Export complete")
    assert "Verification passed" in result
    scenario.shot("exported")
    info = json.loads((out / "export_info.json").read_text(encoding="utf-8"))
    assert info["verification"]["passed"] and info["adapters"] == [str(scenario.run)]
    page.get_by_role("tab", name="Train").click()
