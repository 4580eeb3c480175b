"""The Chat, Export, Evaluate and Runs tabs in real headless Chromium, on a real `tunelab webui`
subprocess whose runs folder holds an identity adapter trained with `tunelab train` (the CLI).
A screenshot per step goes to tests/artifacts/board_tabs_*.png."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest

import board_support
from board_support import board_env, browser_page, running_board, shot
from board_tabs_support import ROOT, data_dir, identity_answers, train_identity_run
from tunelab.errors import RunError
from tunelab.runs import RunDir, RunStore, new_manifest

LONG = 180_000  # ms: model loads and exports on 2 shared CPU cores


@pytest.fixture(scope="module")
def env(tunelab_home):
    return board_env({**os.environ, "TUNELAB_HOME": str(tunelab_home)})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, env):
    folder = tmp_path_factory.getbasetemp() / "board-tabs"
    folder.mkdir(exist_ok=True)
    train_identity_run(folder, env)
    return folder


@pytest.fixture(scope="module")
def page(workdir, env):
    with running_board(workdir, env, "--data-dir", str(data_dir())) as board, browser_page() as page:
        page.goto(board.url)
        page.get_by_role("tab", name="Runs").wait_for()
        yield page


def pick(page, box: str, text: str) -> None:
    """Choose the option containing ``text`` in the dropdown ``#box``."""
    page.locator(f"#{box} input").first.click()
    page.get_by_role("option").filter(has_text=text).first.click()
    page.keyboard.press("Escape")


def use_identity_adapter(page) -> None:
    """Select the trained adapter in the top bar unless an earlier test did (each tab's test
    must also run alone, e.g. with -k)."""
    if "ident" not in page.locator("#top-adapters").inner_text():
        pick(page, "top-adapters", "ident · tunelab/tiny-chat")


def wait_text(page, selector: str, text: str, timeout: int = LONG) -> str:
    return board_support.wait_text(page, selector, text, timeout)


@pytest.mark.slow
def test_runs_tab_lists_and_opens_the_cli_run(page, workdir):
    page.get_by_role("tab", name="Runs").click()
    row = wait_text(page, "#runs-table", "ident")
    for cell in ("tunelab/tiny-chat", "sft", "lora", "identity", "completed", "100/100"):
        assert cell in row
    pick(page, "runs-pick", "ident")
    details = wait_text(page, "#runs-details", "checkpoint-100")
    assert str(workdir / "saves" / "ident") in details
    page.locator("#runs-curve canvas, #runs-curve svg").first.wait_for()
    assert wait_text(page, "#runs-config", "lora_rank")
    shot(page, "board_tabs_01_runs_open")


@pytest.mark.slow
def test_chat_tab_answers_with_the_trained_adapter(page):
    page.get_by_role("tab", name="Chat").click()
    page.locator("#chat-input textarea").fill("Who are you?")
    page.locator("#chat-send").click()
    assert "no model is loaded" in wait_text(page, "#chat-status", "no model is loaded")
    shot(page, "board_tabs_02_chat_no_model")

    use_identity_adapter(page)
    page.locator("#chat-load").click()
    assert "adapters ident" in wait_text(page, "#chat-status", "Loaded")
    page.get_by_text("Sampling settings").click()
    temperature = page.locator("#chat-temperature input[type=number]")
    temperature.fill("0")
    temperature.press("Enter")
    page.locator("#chat-send").click()
    expected = identity_answers()["Who are you?"]
    wait_text(page, "#chat-bot", expected)
    shot(page, "board_tabs_03_chat_answer")

    page.locator("#chat-clear").click()
    wait_text(page, "#chat-status", "History cleared")
    assert expected not in page.locator("#chat-bot").inner_text()


@pytest.mark.slow
def test_export_tab_verifies_the_export(page, workdir):
    use_identity_adapter(page)
    page.get_by_role("tab", name="Export").click()
    folder = page.locator("#export-dir textarea, #export-dir input").first
    folder.fill("/etc/tunelab-export")
    page.locator("#export-start").click()
    assert "outside the folders" in wait_text(page, "#export-result", "failed")
    assert not os.path.exists("/etc/tunelab-export")

    folder.fill("exports/ident")
    page.locator("#export-start").click()
    result = wait_text(page, "#export-result", "Export complete")
    assert "Verification passed" in result and "model.safetensors" in result
    shot(page, "board_tabs_04_export_done")
    info = json.loads((workdir / "exports" / "ident" / "export_info.json").read_text())
    assert info["verification"]["passed"] and info["adapters"] == [str(workdir / "saves" / "ident")]


@pytest.mark.slow
def test_evaluate_tab_shows_the_engine_figure(page, workdir):
    from tunelab.evaluate import evaluation_config, perplexity

    use_identity_adapter(page)
    page.get_by_role("tab", name="Evaluate").click()
    pick(page, "evaluate-datasets", "identity")
    number = page.locator("#evaluate-max-samples input")
    number.fill("8")
    page.locator("#evaluate-start").click()
    text = wait_text(page, "#evaluate-result", "perplexity")
    shot(page, "board_tabs_05_evaluate")
    expected = perplexity(evaluation_config("tunelab/tiny-chat", [str(workdir / "saves" / "ident")],
                                            ["identity"], {"max_samples": 8, "dataset_dir": str(data_dir())}))
    assert f"Loss {expected.loss:.4f}" in text and f"perplexity {expected.perplexity:.3f}" in text
    assert expected.loss < 0.3  # the adapter learned these 8 rows (its last logged loss is ~0.06)


@pytest.mark.slow
def test_evaluate_tab_predicts_and_records_like_the_cli(page, workdir):
    """Predictions chosen on the page run `tunelab eval`'s function: the page shows the record
    it wrote into the run's eval/ folder, and the trained answers match."""
    use_identity_adapter(page)
    page.get_by_role("tab", name="Evaluate").click()
    pick(page, "evaluate-metric", "Predictions")
    page.locator("#evaluate-max-samples input").fill("8")
    page.locator("#evaluate-max-new-tokens input").fill("64")
    page.locator("#evaluate-start").click()
    text = wait_text(page, "#evaluate-result", "exact_match")
    shot(page, "board_tabs_05b_evaluate_predict")
    saved = json.loads((workdir / "saves" / "ident" / "eval" / "predict_identity.json").read_text())
    assert saved["settings"]["max_samples"] == 8 and saved["settings"]["max_new_tokens"] == 64
    assert re.search(rf"exact_match\s+{saved['metrics']['exact_match']:.4f}", text), text
    assert saved["metrics"]["exact_match"] >= 0.9


@pytest.mark.slow
def test_delete_a_cli_run_after_confirmation(page, workdir, env):
    scratch = workdir / "saves" / "scratch"
    subprocess.run([sys.executable, "-m", "tunelab", "train", "examples/tiny_lora_sft.yaml",
                    f"output_dir={scratch}", "max_steps=1", "max_samples=4", "additional_target=null"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    page.get_by_role("tab", name="Runs").click()
    page.locator("#runs-refresh").click()
    wait_text(page, "#runs-table", "scratch")
    pick(page, "runs-pick", "scratch")
    page.locator("#runs-delete").click()
    assert str(scratch) in wait_text(page, "#runs-confirm-text", "cannot be undone")
    shot(page, "board_tabs_06_delete_confirm")
    page.locator("#runs-cancel").click()
    wait_text(page, "#runs-message", "Nothing was deleted")
    assert (scratch / "manifest.json").is_file()

    page.locator("#runs-delete").click()
    page.locator("#runs-confirm").click()
    wait_text(page, "#runs-message", "Deleted")
    page.wait_for_function("!document.querySelector('#runs-table').innerText.includes('scratch')")
    shot(page, "board_tabs_07_deleted")
    assert not scratch.exists() and (workdir / "saves" / "ident" / "manifest.json").is_file()


def _run(folder, status="completed", pid=None):
    manifest = new_manifest(config_given={}, config_resolved={}, stage="sft", method="lora",
                            model="m", run_name=folder.name, command=[])
    manifest.update(status=status, host=socket.gethostname(), pid=pid)
    RunDir(folder).write_manifest(manifest)
    return folder


def test_delete_removes_only_runs_inside_the_runs_folder(tmp_path):
    runs = tmp_path / "saves"
    store = RunStore([runs])
    outside = _run(tmp_path / "elsewhere" / "run")
    with pytest.raises(RunError, match="not inside the runs folder"):
        store.delete(outside)
    with pytest.raises(RunError, match="not inside the runs folder"):
        store.delete(runs / ".." / "elsewhere" / "run")
    _run(runs)  # even a manifest in the runs folder itself does not make the folder deletable
    with pytest.raises(RunError, match="not inside the runs folder"):
        store.delete(runs)
    plain = runs / "notes"
    plain.mkdir()
    with pytest.raises(RunError, match="not a run directory"):
        store.delete(plain)
    live = _run(runs / "live", status="running", pid=os.getpid())
    with pytest.raises(RunError, match="still training"):
        store.delete(live)
    done = _run(runs / "done")
    assert store.delete(done) == done.resolve() and not done.exists()
    assert outside.is_dir() and plain.is_dir() and live.is_dir()
