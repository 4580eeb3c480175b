"""The Evaluate tab: loss and perplexity of the top bar's model (+ adapters) on chosen datasets,
through ``tunelab.evaluate`` (new evaluations join the ``METRICS`` list here)."""

from __future__ import annotations

from typing import Any, Iterator

from tunelab.ui.context import BoardContext
from tunelab.ui.i18n import register, t
from tunelab.ui.tabs.background import BackgroundJob
from tunelab.ui.tabs.chat_session import describe_error

register({
    "evaluate.heading": ("Score the model chosen in the top bar (with its selected adapters) on "
                         "datasets encoded exactly as training encodes them.",
                         "在数据集上评估顶部所选的模型（及所选适配器），数据编码方式与训练完全相同。"),
    "evaluate.metric": ("Evaluation", "评估方式"),
    "evaluate.metric.perplexity": ("Loss / perplexity", "损失 / 困惑度"),
    "evaluate.datasets": ("Datasets", "数据集"),
    "evaluate.datasets.info": ("From dataset_info.json in the board's data folder, and the demo datasets.",
                               "来自控制台数据文件夹中的 dataset_info.json，以及演示数据集。"),
    "evaluate.max_samples": ("Max samples per dataset (0: all)", "每个数据集的最大样本数（0 表示全部）"),
    "evaluate.start": ("Evaluate", "开始评估"),
    "evaluate.running": ("Evaluating ...", "正在评估 ..."),
    "evaluate.busy": ("An evaluation is already running.", "已有评估任务在运行。"),
    "evaluate.failed": ("Evaluation failed: {error}", "评估失败：{error}"),
    "evaluate.result": ("**Loss {loss:.4f}**, **perplexity {ppl:.3f}** over {tokens} scored tokens in "
                        "{samples} samples of {datasets} ({model}).",
                        "**损失 {loss:.4f}**，**困惑度 {ppl:.3f}**，基于 {datasets} 中 {samples} 个样本的 "
                        "{tokens} 个计分词元（{model}）。"),
    "evaluate.log": ("Progress", "进度"),
    "evaluate.no_registry": ("No datasets found: {error}", "未找到数据集：{error}"),
})

METRICS = ("perplexity",)


def dataset_names(ctx: BoardContext) -> list[str]:
    """Names a recipe can use with the board's data folder: its own and the packaged demos."""
    from tunelab.data.registry import available_datasets

    try:
        return sorted(available_datasets(ctx.data_dir))
    except Exception:  # shown as an empty list; evaluating then names the problem
        return []


def evaluation_updates(job: BackgroundJob, ctx: BoardContext, model: str | None, adapters: list[str],
                       datasets: list[str], max_samples: Any, lang: str) -> Iterator[tuple[str, str]]:
    """(log so far, result text) while the evaluation runs in the background."""
    from tunelab.evaluate import evaluation_config, perplexity
    from tunelab.ui.tabs.chat import checked_model

    def work(log):
        paths = [str(ctx.resolve_path(a, "adapter")) for a in adapters or []]
        keys = {"dataset_dir": str(ctx.data_dir), "max_samples": int(max_samples) if max_samples else None}
        return perplexity(evaluation_config(checked_model(ctx, model), paths, datasets or [], keys), log)

    for update in job.stream(work):
        if update.busy:
            yield "", t("evaluate.busy", lang)
        elif not update.done:
            yield update.log, t("evaluate.running", lang)
        elif update.error is not None:
            yield update.log, t("evaluate.failed", lang, error=describe_error(update.error))
        else:
            r = update.result
            model_text = r.model + (f" + {', '.join(r.adapters)}" if r.adapters else "")
            yield update.log, t("evaluate.result", lang, loss=r.loss, ppl=r.perplexity, tokens=r.tokens,
                                samples=r.samples, datasets=", ".join(r.datasets), model=model_text)


def build(ctx: BoardContext, top: Any) -> list[tuple[Any, str, str | None]]:
    """Lay out the Evaluate tab and wire the Evaluate button."""
    import gradio as gr

    lang = ctx.lang
    job = BackgroundJob()
    heading = gr.Markdown(t("evaluate.heading", lang))
    with gr.Row():
        metric = gr.Dropdown([(t(f"evaluate.metric.{m}", lang), m) for m in METRICS], value=METRICS[0],
                             label=t("evaluate.metric", lang), scale=1, elem_id="evaluate-metric")
        names = dataset_names(ctx)
        datasets = gr.Dropdown(names, value=[], multiselect=True, label=t("evaluate.datasets", lang),
                               info=t("evaluate.datasets.info", lang), scale=3, elem_id="evaluate-datasets")
        max_samples = gr.Number(value=0, precision=0, minimum=0, label=t("evaluate.max_samples", lang),
                                scale=1, elem_id="evaluate-max-samples")
    start = gr.Button(t("evaluate.start", lang), variant="primary", elem_id="evaluate-start")
    result = gr.Markdown(elem_id="evaluate-result")
    log = gr.Textbox(label=t("evaluate.log", lang), lines=4, interactive=False, elem_id="evaluate-log")

    def do_evaluate(model, adapters, datasets_v, max_samples_v, lang_v):
        yield from evaluation_updates(job, ctx, model, adapters, datasets_v, max_samples_v, lang_v)

    start.click(do_evaluate, [top.model, top.adapters, datasets, max_samples, top.lang], [log, result],
                api_visibility="private")
    return [(heading, "evaluate.heading", None), (metric, "evaluate.metric", None),
            (datasets, "evaluate.datasets", "evaluate.datasets.info"),
            (max_samples, "evaluate.max_samples", None), (start, "evaluate.start", None),
            (log, "evaluate.log", None)]
