"""The Export tab: merge the top bar's model + adapters into a standalone folder with
``run_export`` (what ``tunelab export`` calls), in a background thread so the page stays live,
streaming its log and then showing the files written, the verification figure and the folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from tunelab.config import spec_for
from tunelab.ui.context import BoardContext
from tunelab.ui.i18n import register, t
from tunelab.ui.tabs.background import BackgroundJob
from tunelab.ui.tabs.chat_session import describe_error

register({
    "export.heading": ("Export the model chosen in the top bar, with the selected adapters merged in.",
                       "导出顶部所选的模型，并合并所选的适配器。"),
    "export.dir": ("Export folder", "导出文件夹"),
    "export.size": ("Max shard size", "最大分片大小"),
    "export.dtype": ("Weight dtype", "权重数据类型"),
    "export.verify": ("Verify (reload and compare outputs: logits, or rewards of a reward model)",
                      "校验（重新加载并比较输出：logits，奖励模型则比较奖励）"),
    "export.overwrite": ("Overwrite a non-empty folder", "覆盖非空文件夹"),
    "export.gguf": ("Also write GGUF (llama.cpp / Ollama)", "同时写出 GGUF（llama.cpp / Ollama）"),
    "export.start": ("Export", "导出"),
    "export.log": ("Progress", "进度"),
    "export.busy": ("An export is already running; wait for it to finish.", "已有导出任务在运行，请等待其完成。"),
    "export.running": ("Exporting ...", "正在导出 ..."),
    "export.failed": ("Export failed: {error}", "导出失败：{error}"),
    "export.done": ("Export complete: `{path}`", "导出完成：`{path}`"),
    "export.files": ("Files written: {files}", "写出的文件：{files}"),
    "export.verified": ("Verification {verdict}: max logit difference {rel:.3g} of the largest logit "
                        "(tolerance {tol:.3g}); greedy next token agrees at {agree:.1f}% of positions.",
                        "校验{verdict}：最大 logit 差为最大 logit 的 {rel:.3g}（容差 {tol:.3g}）；"
                        "贪心下一个词元在 {agree:.1f}% 的位置上一致。"),
    "export.verified_reward": ("Verification {verdict}: max reward difference {rel:.3g} of the largest "
                               "reward (tolerance {tol:.3g}); the probe texts rank in the same order "
                               "at {agree:.1f}% of pairs.",
                               "校验{verdict}：最大奖励差为最大奖励的 {rel:.3g}（容差 {tol:.3g}）；"
                               "探测文本的排序在 {agree:.1f}% 的文本对上一致。"),
    "export.passed": ("passed", "通过"),
    "export.not_verified": ("Not verified (verification was switched off).", "未校验（已关闭校验）。"),
})
# Each control's hint is the help of the recipe key it sets (the spec), in both languages.
CONTROL_KEYS = {"dir": "export_dir", "size": "export_size", "dtype": "export_dtype", "verify": "export_verify",
                "overwrite": "export_overwrite", "gguf": "export_gguf"}
register({f"export.{name}.info": (spec_for(key).help, spec_for(key).help_zh) for name, key in CONTROL_KEYS.items()})


def export_recipe(ctx: BoardContext, model: str | None, adapters: list[str], export_dir: str, size: str,
                  dtype: str, verify: bool, gguf: list[str], overwrite: bool, template: str | None) -> dict:
    """The recipe keys ``tunelab export`` would get for these choices; typed paths checked."""
    from tunelab.ui.tabs.chat import checked_model

    recipe: dict[str, Any] = {
        "export_dir": str(ctx.resolve_path(export_dir, t("export.dir", "en"))),
        "export_size": (size or "").strip() or spec_for("export_size").default,
        "export_dtype": dtype, "export_verify": bool(verify), "export_overwrite": bool(overwrite),
        "export_gguf": ",".join(gguf) if gguf else None,
        "model_name_or_path": checked_model(ctx, model),
        "adapter_name_or_path": ",".join(str(ctx.resolve_path(a, "adapter")) for a in adapters) or None,
        "template": template,
    }
    return {k: v for k, v in recipe.items() if v is not None}


def result_text(result: Any, lang: str) -> str:
    """The files written, the verification figure and where the export is."""
    folder = Path(result.export_dir)
    files = sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else result.weight_files
    lines = [t("export.done", lang, path=folder), t("export.files", lang, files=", ".join(files))]
    report = result.verification
    if report:
        verdict = t("export.passed", lang) if report["passed"] else "FAILED"
        reward = report.get("kind") == "rewards"  # a reward model is checked on its rewards
        agree = report["rank_agreement"] if reward else report["greedy_agreement"]
        lines.append(t("export.verified_reward" if reward else "export.verified", lang,
                       verdict=verdict, rel=report["max_rel_diff"], tol=report["tolerance"],
                       agree=100 * agree))
    else:
        lines.append(t("export.not_verified", lang))
    return "\n\n".join(lines)


def export_updates(job: BackgroundJob, recipe: dict, lang: str) -> Iterator[tuple[str, str]]:
    """(log so far, result text) while ``run_export`` works in the background."""
    from tunelab.config import load_config
    from tunelab.export import run_export

    for update in job.stream(lambda log: run_export(load_config(None, recipe), log=log)):
        if update.busy:
            yield "", t("export.busy", lang)
        elif not update.done:
            yield update.log, t("export.running", lang)
        elif update.error is not None:
            yield update.log, t("export.failed", lang, error=describe_error(update.error))
        else:
            yield update.log, result_text(update.result, lang)


def build(ctx: BoardContext, top: Any) -> list[tuple[Any, str, str | None]]:
    """Lay out the Export tab and wire the Export button."""
    import gradio as gr

    from tunelab.ui.tabs.chat import _template

    lang = ctx.lang
    job = BackgroundJob()
    heading = gr.Markdown(t("export.heading", lang))
    with gr.Row():
        folder = gr.Textbox(label=t("export.dir", lang), info=t("export.dir.info", lang), scale=3,
                            elem_id="export-dir")
        size = gr.Textbox(value=str(spec_for("export_size").default), label=t("export.size", lang),
                          info=t("export.size.info", lang), scale=1, elem_id="export-size")
        dtype = gr.Dropdown(list(spec_for("export_dtype").choices), value=spec_for("export_dtype").default,
                            label=t("export.dtype", lang), info=t("export.dtype.info", lang), scale=1,
                            elem_id="export-dtype")
    with gr.Row():
        verify = gr.Checkbox(value=spec_for("export_verify").default, label=t("export.verify", lang),
                             info=t("export.verify.info", lang), elem_id="export-verify")
        overwrite = gr.Checkbox(value=spec_for("export_overwrite").default, label=t("export.overwrite", lang),
                                info=t("export.overwrite.info", lang), elem_id="export-overwrite")
        gguf = gr.CheckboxGroup([g for g in spec_for("export_gguf").choices if g != "none"],
                                label=t("export.gguf", lang), info=t("export.gguf.info", lang),
                                elem_id="export-gguf")
    start = gr.Button(t("export.start", lang), variant="primary", elem_id="export-start")
    result = gr.Markdown(elem_id="export-result")
    log = gr.Textbox(label=t("export.log", lang), lines=8, max_lines=16, interactive=False, elem_id="export-log")

    def do_export(model, adapters, template, folder_v, size_v, dtype_v, verify_v, gguf_v, overwrite_v, lang_v):
        try:
            recipe = export_recipe(ctx, model, adapters or [], folder_v, size_v, dtype_v, verify_v,
                                   gguf_v, overwrite_v, _template(template))
        except Exception as exc:
            yield "", t("export.failed", lang_v, error=describe_error(exc))
            return
        yield from export_updates(job, recipe, lang_v)

    start.click(do_export, [top.model, top.adapters, top.template, folder, size, dtype, verify, gguf,
                            overwrite, top.lang], [log, result], api_visibility="private")
    return [(heading, "export.heading", None), (folder, "export.dir", "export.dir.info"),
            (size, "export.size", "export.size.info"), (dtype, "export.dtype", "export.dtype.info"),
            (verify, "export.verify", "export.verify.info"),
            (overwrite, "export.overwrite", "export.overwrite.info"), (gguf, "export.gguf", "export.gguf.info"), (start, "export.start", None), (log, "export.log", None)]

