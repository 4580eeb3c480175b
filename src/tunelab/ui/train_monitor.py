"""The Train tab's live view of one run: status, progress bar, loss curve data and log tail,
drawn from the run folder (so a refreshed page or a restarted board shows the same)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from tunelab.ui.i18n import t
from tunelab.ui.jobs import Progress, job_files, log_tail, read_progress


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_html(p: Progress, lang: str, run: str = "") -> str:
    """A <progress> bar with step/total, elapsed, ETA and tokens/s; data-* attributes carry the
    numbers for scripts and tests."""
    total = p.total or 0
    percent = int(100 * p.step / total) if total else 0
    tps = f"{p.tokens_per_s:,.0f}" if p.tokens_per_s else "-"
    line = t("train.progress", lang, step=p.step, total=total or "?", percent=percent, elapsed=_clock(p.elapsed_s),
             eta=_clock(p.eta_s), tps=tps)
    status = t("train.status", lang, status=t(f"status.{p.status}", lang) if p.status in _STATUSES else p.status)
    error = f"<pre class='run-error'>{html.escape(p.error)}</pre>" if p.error else ""
    ckpts = f"<div>{html.escape(t('train.checkpoints', lang, names=', '.join(p.checkpoints)))}</div>" \
        if p.checkpoints else ""
    return (f"<div id='train-progress-info' data-run='{html.escape(Path(run).name if run else '')}' "
            f"data-status='{html.escape(p.status)}' data-step='{p.step}' "
            f"data-total='{total}' data-points='{len(p.points)}'>"
            f"<div><b>{html.escape(status)}</b></div>"
            f"<progress value='{p.step}' max='{max(total, 1)}' style='width:100%'></progress>"
            f"<div>{html.escape(line)}</div>{ckpts}{error}</div>")


_STATUSES = ("running", "starting", "completed", "failed", "interrupted", "created", "unknown")


def loss_frame(p: Progress) -> Any:
    """The loss points as the LinePlot's DataFrame (columns step, loss, kind)."""
    import pandas as pd

    frame = pd.DataFrame(p.points or [], columns=["step", "loss", "kind"])
    # Typed columns: an empty or object-typed frame makes the chart treat loss as categories.
    return frame.astype({"step": "int64", "loss": "float64", "kind": "str"})


def snapshot(runs_dir: Path, run: str | None, lang: str) -> tuple[str, Any, str, str]:
    """(progress html, loss frame, log tail, signature) of the run shown; the signature changes
    whenever anything shown would, so an unchanged tick redraws nothing."""
    if not run:
        empty = Progress(status="unknown")
        return progress_html(empty, lang), loss_frame(empty), "", f"none:{lang}"
    progress = read_progress(Path(run))
    tail = log_tail(job_files(runs_dir, Path(run))[1])
    sig = f"{run}:{lang}:{progress.status}:{progress.step}:{len(progress.points)}:{len(progress.checkpoints)}:{len(tail)}"
    return progress_html(progress, lang, run), loss_frame(progress), tail, sig
