"""The Evaluate tab: the top bar's model (+ adapters) scored by ``tunelab.evaluate.run_evaluations``,
the function ``tunelab eval`` calls: loss / perplexity or generated predictions (BLEU, ROUGE,
exact match) on chosen datasets, or lm-evaluation-harness benchmarks. Each result is also
written to the run's ``eval/`` folder, as from the command line."""

from __future__ import annotations

from typing import Any, Iterator

from tunelab.ui.context import BoardContext
from tunelab.ui.i18n import register, t
from tunelab.ui.tabs.background import BackgroundJob
from tunelab.ui.tabs.chat_session import describe_error

register({
    "evaluate.heading": ("Score the model chosen in the top bar (with its selected adapters): on "
                         "datasets encoded exactly as training encodes them, or on benchmarks.",
                         "评估顶部所选的模型（及所选适配器）：在与训练编码方式完全相同的数据集上，或在基准测试上。"),
    "evaluate.metric": ("Evaluation", "评估方式"),
    "evaluate.metric.perplexity": ("Loss / perplexity", "损失 / 困惑度"),
    "evaluate.metric.predict": ("Predictions: BLEU / ROUGE / exact match", "生成预测：BLEU / ROUGE / 精确匹配"),
    "evaluate.metric.benchmark": ("Benchmarks (lm-evaluation-harness)", "基准测试（lm-evaluation-harness）"),
    "evaluate.datasets": ("Datasets", "数据集"),
    "evaluate.datasets.info": ("From dataset_info.json in the board's data folder, and the demo datasets.",
                               "来自控制台数据文件夹中的 dataset_info.json，以及演示数据集。"),
    "evaluate.max_samples": ("Max samples per dataset (0: all)", "每个数据集的最大样本数（0 表示全部）"),
    "evaluate.max_new_tokens": ("Max new tokens per answer", "每个回答最多生成的 token 数"),
    "evaluate.tasks": ("Benchmark tasks (comma-separated)", "基准任务（逗号分隔）"),
    "evaluate.tasks.info": ("lm-eval names such as mmlu, cmmlu, ceval-valid, gsm8k, or tasks in the folder below.",
                            "lm-eval 任务名，如 mmlu、cmmlu、ceval-valid、gsm8k，或下面文件夹中的任务。"),
    "evaluate.include_path": ("Local task folder (optional)", "本地任务文件夹（可选）"),
    "evaluate.num_fewshot": ("Few-shot examples (-1: the task's own)", "少样本示例数（-1 表示任务默认）"),
    "evaluate.limit": ("Questions per task (0: all)", "每个任务的题目数（0 表示全部）"),
    "evaluate.chat_template": ("Use the chat template", "使用对话模板"),
    "evaluate.start": ("Evaluate", "开始评估"),
    "evaluate.running": ("Evaluating ...", "正在评估 ..."),
    "evaluate.busy": ("An evaluation is already running.", "已有评估任务在运行。"),
    "evaluate.failed": ("Evaluation failed: {error}", "评估失败：{error}"),
    "evaluate.result": ("**Loss {loss:.4f}**, **perplexity {ppl:.3f}** over {tokens} scored tokens in "
                        "{samples} samples of {datasets} ({model}).",
                        "**损失 {loss:.4f}**，**困惑度 {ppl:.3f}**，基于 {datasets} 中 {samples} 个样本的 "
                        "{tokens} 个计分词元（{model}）。"),
    "evaluate.table": ("**{name}** of {model}, saved in `{path}`:", "**{name}**（{model}），已保存到 `{path}`："),
    "evaluate.log": ("Progress", "进度"),
    "evaluate.no_registry": ("No datasets found: {error}", "未找到数据集：{error}"),
})

METRICS = ("perplexity", "predict", "benchmark")


def dataset_names(ctx: BoardContext) -> list[str]:
    """Names a recipe can use with the board's data folder: its own and the packaged demos."""
    from tunelab.data.registry import available_datasets

    try:
        return sorted(available_datasets(ctx.data_dir))
    except Exception:  # shown as an empty list; evaluating then names the problem
        return []


def evaluation_request(ctx: BoardContext, metric: str, model: str | None, adapters: list[str],
                       form: dict[str, Any]) -> Any:
    """The EvalRequest the form describes (paths checked against the board's roots)."""
    from tunelab.evaluate import BenchmarkSettings, EvalRequest
    from tunelab.evaluate.target import target_for
    from tunelab.ui.tabs.chat import checked_model

    paths = [str(ctx.resolve_path(a, "adapter")) for a in adapters or []]
    target = target_for(checked_model(ctx, model), paths, ctx.runs_dir.parent / "evals")
    keys = {"dataset_dir": str(ctx.data_dir), "max_samples": int(form.get("max_samples") or 0) or None}
    if metric == "predict":
        keys["max_new_tokens"] = int(form.get("max_new_tokens") or 256)
    bench = None
    if metric == "benchmark":
        folder = (form.get("include_path") or "").strip()
        fewshot, limit = int(form.get("num_fewshot") or -1), int(form.get("limit") or 0)
        bench = BenchmarkSettings(
            tasks=[n.strip() for n in (form.get("tasks") or "").split(",") if n.strip()],
            num_fewshot=fewshot if fewshot >= 0 else None, limit=limit or None,
            include_path=[str(ctx.resolve_path(folder, "task folder"))] if folder else [],
            apply_chat_template=bool(form.get("chat_template")))
    return EvalRequest(targets=[target], predict=metric == "predict", perplexity=metric == "perplexity",
                       benchmark=bench, datasets=list(form.get("datasets") or []), keys=keys)


def result_text(record: Any, lang: str) -> str:
    """Perplexity as one sentence; any other evaluation as a table of its metrics."""
    model = record.model + (f" + {', '.join(record.adapters)}" if record.adapters else "")
    if record.kind == "perplexity":
        m = record.metrics
        return t("evaluate.result", lang, loss=m["loss"], ppl=m["perplexity"], tokens=int(m["tokens"]),
                 samples=record.details.get("samples"), datasets=", ".join(record.settings["datasets"]),
                 model=model)
    rows = [f"| {k} | {v:.4f} |" for k, v in record.metrics.items() if not k.endswith("_stderr")]
    return "\n".join([t("evaluate.table", lang, name=record.name, model=model, path=record.path), "",
                      "| metric | value |", "|---|---|", *rows])


def evaluation_updates(job: BackgroundJob, ctx: BoardContext, metric: str, model: str | None,
                       adapters: list[str], form: dict[str, Any], lang: str) -> Iterator[tuple[str, str]]:
    """(log so far, result text) while the evaluation runs in the background."""
    from tunelab.evaluate import run_evaluations

    def work(log):
        return run_evaluations(evaluation_request(ctx, metric, model, adapters, form), log)

    for update in job.stream(work):
        if update.busy:
            yield "", t("evaluate.busy", lang)
        elif not update.done:
            yield update.log, t("evaluate.running", lang)
        elif update.error is not None:
            yield update.log, t("evaluate.failed", lang, error=describe_error(update.error))
        else:
            yield update.log, "\n\n".join(result_text(r, lang) for r in update.result)


def build(ctx: BoardContext, top: Any) -> list[tuple[Any, str, str | None]]:
    """Lay out the Evaluate tab and wire the Evaluate button."""
    import gradio as gr

    lang = ctx.lang
    job = BackgroundJob()
    heading = gr.Markdown(t("evaluate.heading", lang))
    with gr.Row():
        metric = gr.Dropdown([(t(f"evaluate.metric.{m}", lang), m) for m in METRICS], value=METRICS[0],
                             label=t("evaluate.metric", lang), scale=1, elem_id="evaluate-metric")
        datasets = gr.Dropdown(dataset_names(ctx), value=[], multiselect=True, label=t("evaluate.datasets", lang),
                               info=t("evaluate.datasets.info", lang), scale=3, elem_id="evaluate-datasets")
        max_samples = gr.Number(value=0, precision=0, minimum=0, label=t("evaluate.max_samples", lang),
                                scale=1, elem_id="evaluate-max-samples")
        max_new = gr.Number(value=256, precision=0, minimum=1, label=t("evaluate.max_new_tokens", lang),
                            scale=1, elem_id="evaluate-max-new-tokens")
    with gr.Row():
        tasks = gr.Textbox(label=t("evaluate.tasks", lang), info=t("evaluate.tasks.info", lang), scale=3,
                           elem_id="evaluate-tasks")
        folder = gr.Textbox(label=t("evaluate.include_path", lang), scale=2, elem_id="evaluate-include-path")
        fewshot = gr.Number(value=-1, precision=0, minimum=-1, label=t("evaluate.num_fewshot", lang), scale=1,
                            elem_id="evaluate-num-fewshot")
        limit = gr.Number(value=0, precision=0, minimum=0, label=t("evaluate.limit", lang), scale=1,
                          elem_id="evaluate-limit")
        chat = gr.Checkbox(value=False, label=t("evaluate.chat_template", lang), scale=1,
                           elem_id="evaluate-chat-template")
    start = gr.Button(t("evaluate.start", lang), variant="primary", elem_id="evaluate-start")
    result = gr.Markdown(elem_id="evaluate-result")
    log = gr.Textbox(label=t("evaluate.log", lang), lines=4, interactive=False, elem_id="evaluate-log")

    def do_evaluate(metric_v, model, adapters, datasets_v, samples_v, new_v, tasks_v, folder_v,
                    fewshot_v, limit_v, chat_v, lang_v):
        form = {"datasets": datasets_v, "max_samples": samples_v, "max_new_tokens": new_v, "tasks": tasks_v,
                "include_path": folder_v, "num_fewshot": fewshot_v, "limit": limit_v, "chat_template": chat_v}
        yield from evaluation_updates(job, ctx, metric_v, model, adapters, form, lang_v)

    start.click(do_evaluate, [metric, top.model, top.adapters, datasets, max_samples, max_new, tasks, folder,
                              fewshot, limit, chat, top.lang], [log, result], api_visibility="private")
    return [(heading, "evaluate.heading", None), (metric, "evaluate.metric", None),
            (datasets, "evaluate.datasets", "evaluate.datasets.info"),
            (max_samples, "evaluate.max_samples", None), (max_new, "evaluate.max_new_tokens", None),
            (tasks, "evaluate.tasks", "evaluate.tasks.info"), (folder, "evaluate.include_path", None),
            (fewshot, "evaluate.num_fewshot", None), (limit, "evaluate.limit", None),
            (chat, "evaluate.chat_template", None), (start, "evaluate.start", None),
            (log, "evaluate.log", None)]
