"""Support for the board's browser tests: a real `tunelab webui` subprocess on a free port and a
Playwright browser on the Debian `chromium` (no browser download: ``executable_path``).

Test modules import the helpers they need (``from board_support import running_board, ...``);
screenshots go to ``tests/artifacts/`` (git-ignored) so a person can look at them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str:
    """The system Chromium (Debian package `chromium`); $TUNELAB_CHROMIUM overrides."""
    found = os.environ.get("TUNELAB_CHROMIUM") or next(
        (p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    if not found:
        raise RuntimeError("no Chromium found: install the Debian package (apt-get install chromium) "
                           "or set TUNELAB_CHROMIUM; scripts/setup_env.sh does this on a fresh machine")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Board:
    """A running ``python -m tunelab webui`` child process and where it listens."""

    def __init__(self, proc: subprocess.Popen, url: str, log: Path):
        self.proc, self.url, self.log = proc, url, log

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def webui_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tunelab", "webui", *args]


def start_board(cwd: Path, env: dict, *args: str, timeout: float = 120.0) -> Board:
    """Start the board in ``cwd`` and wait until it answers HTTP on its port."""
    import urllib.error
    import urllib.request

    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"webui-{port}.log"  # never in cwd: tests start boards in the repository
    handle = log.open("w", encoding="utf-8")
    proc = subprocess.Popen(webui_command("--port", str(port), *args), cwd=cwd, env=env,
                            stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    board = Board(proc, url, log)
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the board exited with {proc.returncode}:\n{board.output()}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return board
        except urllib.error.HTTPError:
            return board  # it answers (e.g. 401 with auth)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    board.stop()
    raise RuntimeError(f"the board did not answer on {url} within {timeout:.0f}s:\n{board.output()}")


@contextmanager
def running_board(cwd: Path, env: dict, *args: str):
    board = start_board(cwd, env, *args)
    try:
        yield board
    finally:
        board.stop()


@contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    """A Playwright page in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()


def shot(page, name: str) -> Path:
    """Save a full-page screenshot as tests/artifacts/<name>.png and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def board_env(base: dict) -> dict:
    """The environment for a board subprocess: our sources first, no hub, one thread."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    path = base.get("PYTHONPATH", "")
    return {**base, "PYTHONPATH": src + (os.pathsep + path if path else ""), "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": base.get("OMP_NUM_THREADS", "1"), "GRADIO_ANALYTICS_ENABLED": "False"}


# --- driving Gradio controls (elem_id-based) -------------------------------------------------

def fill(page, elem_id: str, text) -> None:
    """Type ``text`` into the textbox or number box with ``elem_id`` and leave it (fires change)."""
    box = page.locator(f"#{elem_id} textarea, #{elem_id} input").first
    box.fill(str(text))
    box.press("Tab")


def pick(page, elem_id: str, option: str) -> None:
    """Choose ``option`` (its label) in the dropdown with ``elem_id``."""
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def dropdown_options(page, elem_id: str) -> list[str]:
    """The option labels the dropdown with ``elem_id`` offers right now."""
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option").first.wait_for()
    labels = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return [label.strip() for label in labels]


def open_accordion(page, title: str) -> None:
    page.get_by_text(title, exact=True).first.click()


def wait_run_status(page, status: str, run: str | None = None, timeout_s: float = 300) -> dict:
    """Wait until the Train tab's run view shows run folder ``run`` (any run when None) with
    ``status``; returns its data-* fields."""
    selector = f"#train-progress-info[data-status={status}]" + (f"[data-run='{run}']" if run else "")
    info = page.locator(selector)
    info.wait_for(timeout=timeout_s * 1000)
    return {k: info.get_attribute(f"data-{k}") for k in ("run", "status", "step", "total", "points")}


def wait_step_at_least(page, run: str, step: int, timeout_s: float = 300) -> None:
    """Wait until the run view shows run folder ``run`` at ``step`` or later."""
    page.wait_for_function(
        "([run, n]) => { const e = document.querySelector('#train-progress-info');"
        " return e && e.dataset.run === run && Number(e.dataset.step) >= n; }", arg=[run, step],
        timeout=timeout_s * 1000)


def message(page) -> str:
    return page.locator("#train-message").inner_text()


def press(page, button_id: str, expect: str, timeout_s: float = 60) -> str:
    """Click a Train tab button and wait for a NEW message containing ``expect``; returns it."""
    before = message(page)
    page.locator(f"#{button_id}").click()
    page.wait_for_function(
        "([before, expect]) => { const m = document.querySelector('#train-message');"
        " const text = m ? m.innerText : ''; return text !== before && text.includes(expect); }",
        arg=[before, expect], timeout=timeout_s * 1000)
    return message(page)


def started_run(text: str) -> Path:
    """The run folder named by a "Started training in <path>." message."""
    return Path(text.split("Started training in ", 1)[1].strip().rstrip("."))


def wait_text(page, selector: str, text: str, timeout: int = 180_000) -> str:
    """The text of ``selector`` once it contains ``text``; on timeout a screenshot and what it held."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                               arg=[selector, text], timeout=timeout)
    except PlaywrightTimeout:
        path = shot(page, "wait_text_failure")
        held = page.locator(selector).inner_text() if page.locator(selector).count() else "(missing)"
        raise AssertionError(f"{selector} never showed {text!r}; it shows {held!r} (see {path})") from None
    return page.locator(selector).inner_text()
