"""The Runs tab: every run under the runs folder (CLI- or board-started) in a filterable table;
open one for its config, loss curve and checkpoints; overlay several runs' curves; delete a run
after a confirmation. The data comes from ``tunelab.runs`` (what ``tunelab runs`` prints)."""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr

from tunelab.runs import RunDir, RunInfo, RunStore, loss_points, read_run
from tunelab.runs.run_dir import STATUSES
from tunelab.train.stages import IMPLEMENTED_STAGES
from tunelab.ui.context import BoardContext
from tunelab.ui.i18n import register, t
from tunelab.ui.tabs.chat_session import describe_error

ALL = "all"
COLUMNS = ("name", "model", "stage", "method", "datasets", "status", "steps", "loss", "started", "duration")

register({
    "runs.heading": ("Every run under the runs folder, started here or with `tunelab train`.",
                     "运行目录下的所有运行，无论由此页面还是 `tunelab train` 启动。"),
    "runs.status": ("Status", "状态"),
    "runs.stage": ("Stage", "阶段"),
    "runs.text": ("Search (name, model, dataset)", "搜索（名称、模型、数据集）"),
    "runs.refresh": ("Refresh runs", "刷新运行列表"),
    "runs.table": ("Runs", "运行列表"),
    "runs.pick": ("Open run", "打开运行"),
    "runs.pick.info": ("Or click a row of the table.", "也可以点击表格中的一行。"),
    "runs.details": ("Run details", "运行详情"),
    "runs.curve": ("Loss curve", "损失曲线"),
    "runs.config": ("Config as given", "给定的配置"),
    "runs.compare": ("Compare runs: overlay loss curves", "比较运行：叠加损失曲线"),
    "runs.compare_pick": ("Runs to overlay", "要叠加的运行"),
    "runs.delete": ("Delete run", "删除运行"),
    "runs.confirm": ("Yes, delete it", "确认删除"),
    "runs.cancel": ("Cancel", "取消"),
    "runs.confirm_text": ("Delete run **{name}**? The folder `{path}` and everything in it "
                          "(checkpoints, adapter, logs) is removed. This cannot be undone.",
                          "删除运行 **{name}**？文件夹 `{path}` 及其中的所有内容（检查点、适配器、日志）"
                          "都将被删除，且无法恢复。"),
    "runs.deleted": ("Deleted {path}.", "已删除 {path}。"),
    "runs.cancelled": ("Nothing was deleted.", "未删除任何内容。"),
    "runs.none_picked": ("Pick a run first.", "请先选择一个运行。"),
    "runs.error": ("Error: {error}", "错误：{error}"),
    "runs.count": ("{shown} of {total} runs shown.", "显示 {shown} / {total} 个运行。"),
    "runs.checkpoints": ("Checkpoints", "检查点"),
    "runs.no_checkpoints": ("no checkpoints", "没有检查点"),
    "runs.col.name": ("name", "名称"), "runs.col.model": ("model", "模型"), "runs.col.stage": ("stage", "阶段"),
    "runs.col.method": ("method", "方法"), "runs.col.datasets": ("datasets", "数据集"),
    "runs.col.status": ("status", "状态"), "runs.col.steps": ("steps", "步数"),
    "runs.col.loss": ("last loss", "最新损失"), "runs.col.started": ("started", "开始时间"),
    "runs.col.duration": ("duration", "用时"),
})


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def table_row(run: RunInfo) -> list[Any]:
    steps = f"{run.step}/{run.total_steps}" if run.step is not None else "-"
    loss = f"{run.loss:.4f}" if isinstance(run.loss, (int, float)) else "-"
    return [run.name, run.model, run.stage, run.finetuning_type, ", ".join(run.datasets), run.status,
            steps, loss, run.created_at.replace("T", " ")[:19], _duration(run.duration_s)]


def headers(lang: str) -> list[str]:
    return [t(f"runs.col.{c}", lang) for c in COLUMNS]


def table(runs: list[RunInfo], lang: str) -> Any:
    """The runs table as a frame whose column names are in ``lang``."""
    import pandas as pd

    return pd.DataFrame([table_row(r) for r in runs], columns=headers(lang))


def filtered_runs(ctx: BoardContext, status: str, stage: str, text: str) -> list[RunInfo]:
    """Runs matching the filters, newest first."""
    needle = (text or "").strip().lower()
    runs = RunStore([ctx.runs_dir]).discover()
    return [r for r in runs
            if status in (None, "", ALL, r.status) and stage in (None, "", ALL, r.stage)
            and (not needle or needle in " ".join([r.name, r.model, *r.datasets, str(r.path)]).lower())]


def run_details(path: str, lang: str) -> tuple[str, Any, dict]:
    """(Markdown summary, loss-curve frame, config as given) of one run."""
    import pandas as pd

    run, info = RunDir(path), read_run(RunDir(path).path)
    manifest = run.read_manifest()
    ckpts = [c.name for c in run.checkpoints()]
    lines = [f"**{info.name}** · `{info.path.resolve()}`",
             f"{info.status} · {info.model} · {info.stage} · {info.finetuning_type} · "
             f"{', '.join(info.datasets) or '-'}",
             " · ".join(f"{t(f'runs.col.{c}', lang)} {v}" for c, v in zip(COLUMNS[6:], table_row(info)[6:])),
             f"{t('runs.checkpoints', lang)}: {', '.join(ckpts) or t('runs.no_checkpoints', lang)}"]
    if manifest.get("error"):
        lines.append(f"error: {manifest['error']}")
    frame = pd.DataFrame(loss_points(run.path), columns=["step", "loss", "kind"])
    return "\n\n".join(lines), frame, manifest.get("config_given") or {}


def overlay(paths: list[str]) -> Any:
    """The training-loss points of several runs, coloured by run name."""
    import pandas as pd

    rows = []
    for path in paths or []:
        name = read_run(RunDir(path).path).name
        rows += [{"step": p["step"], "loss": p["loss"], "run": name}
                 for p in loss_points(RunDir(path).path) if p["kind"] == "train"]
    return pd.DataFrame(rows, columns=["step", "loss", "run"])


def refresh_listing(ctx: BoardContext, status: str, stage: str, text: str, picked: str | None,
                    compared: list[str] | None, lang: str) -> tuple:
    """Table, its row paths, the two run pickers (keeping still-present choices) and the count."""
    every = RunStore([ctx.runs_dir]).discover()
    runs = filtered_runs(ctx, status, stage, text)
    choices = [(f"{r.name} · {r.status} · {r.path}", str(r.path)) for r in runs]
    all_paths = [str(r.path) for r in every]
    return (table(runs, lang), [str(r.path) for r in runs],
            gr.update(choices=choices, value=picked if picked in {c[1] for c in choices} else None),
            gr.update(choices=[(f"{r.name} · {r.path}", str(r.path)) for r in every],
                      value=[c for c in compared or [] if c in all_paths]),
            t("runs.count", lang, shown=len(runs), total=len(every)))


def open_run(path: str | None, lang: str) -> tuple:
    if not path:
        return "", None, None
    try:
        return run_details(path, lang)
    except Exception as exc:  # a run folder half-written or removed meanwhile
        return t("runs.error", lang, error=describe_error(exc)), None, None


def select_row(paths: list[str], evt: gr.SelectData) -> Any:
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    return paths[row] if paths and 0 <= row < len(paths) else gr.update()


def ask_to_delete(path: str | None, lang: str) -> tuple:
    """Show the confirmation naming the run and its folder (nothing is removed yet)."""
    if not path:
        return gr.update(visible=False), "", t("runs.none_picked", lang)
    folder = RunDir(path).path.resolve()
    name = read_run(folder).name
    return gr.update(visible=True), t("runs.confirm_text", lang, name=name, path=folder), ""


def delete_run(ctx: BoardContext, path: str | None, lang: str) -> tuple:
    try:
        removed = RunStore([ctx.runs_dir]).delete(path or "")
    except Exception as exc:  # a refusal is a message; nothing is removed
        return gr.update(visible=False), t("runs.error", lang, error=describe_error(exc))
    return gr.update(visible=False), t("runs.deleted", lang, path=removed)


class RunsView:
    """The Runs tab's components."""

    def __init__(self, lang: str):
        self.heading = gr.Markdown(t("runs.heading", lang))
        with gr.Row():
            self.status = gr.Dropdown([ALL, *STATUSES], value=ALL, label=t("runs.status", lang),
                                      elem_id="runs-status")
            self.stage = gr.Dropdown([ALL, *IMPLEMENTED_STAGES], value=ALL, label=t("runs.stage", lang),
                                     elem_id="runs-stage")
            self.text = gr.Textbox(label=t("runs.text", lang), elem_id="runs-text")
            self.refresh = gr.Button(t("runs.refresh", lang), elem_id="runs-refresh")
        self.count = gr.Markdown(elem_id="runs-count")
        self.table = gr.Dataframe(headers=headers(lang), interactive=False, wrap=True,
                                  label=t("runs.table", lang), elem_id="runs-table")
        self.shown = gr.State([])
        with gr.Row():
            self.pick = gr.Dropdown([], label=t("runs.pick", lang), info=t("runs.pick.info", lang), scale=4,
                                    elem_id="runs-pick")
            self.delete = gr.Button(t("runs.delete", lang), variant="stop", scale=1, elem_id="runs-delete")
        self.message = gr.Markdown(elem_id="runs-message")
        with gr.Group(visible=False, elem_id="runs-confirm-box") as self.confirm_box:
            self.confirm_text = gr.Markdown(elem_id="runs-confirm-text")
            with gr.Row():
                self.confirm = gr.Button(t("runs.confirm", lang), variant="stop", elem_id="runs-confirm")
                self.cancel = gr.Button(t("runs.cancel", lang), elem_id="runs-cancel")
        self.details = gr.Markdown(elem_id="runs-details")
        with gr.Row():
            self.curve = gr.LinePlot(x="step", y="loss", color="kind", label=t("runs.curve", lang),
                                     elem_id="runs-curve")
            self.config = gr.JSON(label=t("runs.config", lang), elem_id="runs-config")
        with gr.Accordion(t("runs.compare", lang), open=False) as self.compare_box:
            self.compare = gr.Dropdown([], multiselect=True, label=t("runs.compare_pick", lang),
                                       elem_id="runs-compare")
            self.overlay = gr.LinePlot(x="step", y="loss", color="run", label=t("runs.compare", lang),
                                       elem_id="runs-overlay")

    def labelled(self) -> list[tuple[Any, str, str | None]]:
        return [(self.heading, "runs.heading", None), (self.status, "runs.status", None),
                (self.stage, "runs.stage", None), (self.text, "runs.text", None),
                (self.refresh, "runs.refresh", None), (self.table, "runs.table", None),
                (self.pick, "runs.pick", "runs.pick.info"), (self.delete, "runs.delete", None),
                (self.confirm, "runs.confirm", None), (self.cancel, "runs.cancel", None),
                (self.curve, "runs.curve", None), (self.config, "runs.config", None),
                (self.compare_box, "runs.compare", None), (self.compare, "runs.compare_pick", None),
                (self.overlay, "runs.compare", None)]


def build(ctx: BoardContext, top: Any) -> list[tuple[Any, str, str | None]]:
    """Lay out the Runs tab and wire refresh, open, overlay and delete-with-confirmation."""
    v = RunsView(ctx.lang)
    listing_fn = functools.partial(refresh_listing, ctx)
    filters = [v.status, v.stage, v.text, v.pick, v.compare, top.lang]
    listing = [v.table, v.shown, v.pick, v.compare, v.count]
    hidden = {"api_visibility": "private"}
    for trigger in (v.refresh.click, v.status.change, v.stage.change, v.text.submit, top.refresh.click,
                    top.lang.change):
        trigger(listing_fn, filters, listing, **hidden)
    v.pick.change(open_run, [v.pick, top.lang], [v.details, v.curve, v.config], **hidden)
    v.table.select(select_row, v.shown, v.pick, **hidden)
    v.compare.change(overlay, v.compare, v.overlay, **hidden)
    v.delete.click(ask_to_delete, [v.pick, top.lang], [v.confirm_box, v.confirm_text, v.message], **hidden)
    v.cancel.click(lambda lang: (gr.update(visible=False), t("runs.cancelled", lang)), top.lang,
                   [v.confirm_box, v.message], **hidden)
    v.confirm.click(functools.partial(delete_run, ctx), [v.pick, top.lang], [v.confirm_box, v.message],
                    **hidden).then(listing_fn, filters, listing, **hidden)
    _on_page_load(listing_fn, filters, listing)
    return v.labelled()


def _on_page_load(fn: Any, inputs: list, outputs: list) -> None:
    """Fill the table whenever the page is opened (a refreshed page shows the runs as they are)."""
    from gradio.context import Context

    blocks = Context.root_block
    if blocks is not None:
        blocks.load(fn, inputs, outputs, api_visibility="private")
