"""The top bar shared by every tab: language, model, method, quantization, template, thinking,
adapters/checkpoints picker, hub token."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tunelab.ui.context import BoardContext
from tunelab.ui.i18n import register, t
from tunelab.ui.models import DEFAULT_MODEL, check_model_folder, family_of, model_choices, \
    model_folder, tokenizer_template

register({
    "top.lang": ("Language", "语言"),
    "top.model": ("Model (name, hub id or local folder)", "模型（名称、Hub ID 或本地文件夹）"),
    "top.model.info": ("Pick a listed model or type any path; the folder must hold config.json.",
                       "从列表选择模型，或输入任意路径；文件夹中须有 config.json。"),
    "top.method": ("Method", "微调方法"),
    "top.quantization": ("Quantization (bits)", "量化（位数）"),
    "top.quantization.info": ("4 or 8 bits loads the base with bitsandbytes (QLoRA); needs a CUDA GPU.",
                              "4 或 8 位用 bitsandbytes 加载基座模型（QLoRA），需要 CUDA GPU。"),
    "top.template": ("Chat template", "对话模板"),
    "top.template.info": ("'from tokenizer' keeps the model's own template.",
                          "“来自分词器”表示保留模型自带的模板。"),
    "top.template.tokenizer": ("from tokenizer", "来自分词器"),
    "top.thinking": ("Thinking (reasoning templates)", "思考模式（推理模板）"),
    "top.adapters": ("Adapters / checkpoints", "适配器 / 检查点"),
    "top.adapters.info": ("Every run and checkpoint under the runs folder, CLI-started runs included.",
                          "运行目录下的所有运行和检查点，包括命令行启动的运行。"),
    "top.refresh": ("Refresh", "刷新"),
    "top.token": ("Hugging Face token (kept in memory only)", "Hugging Face 令牌（仅保存在内存中）"),
    "top.token.info": ("For gated or private hub models; HF_TOKEN is used when empty.",
                       "用于受限或私有的 Hub 模型；留空时使用 HF_TOKEN。"),
    "top.model.ok": ("Model {model}: config.json read ({arch}).", "模型 {model}：已读取 config.json（{arch}）。"),
    "top.model.hub": ("{model} is a hub id; it is downloaded when training or chat starts.",
                      "{model} 是 Hub ID，将在训练或对话开始时下载。"),
    "top.model.bad": ("Model problem: {error}", "模型有问题：{error}"),
    "top.template.differs": ("Warning: the model's tokenizer has its own chat template; training "
                             "with '{name}' changes what the model sees. Keep 'from tokenizer' "
                             "unless you mean to change it.",
                             "警告：该模型的分词器自带对话模板；使用“{name}”训练会改变模型看到的格式。"
                             "除非有意更改，请保留“来自分词器”。"),
    "top.template.none": ("Warning: this model's tokenizer has no chat template; pick a named one "
                          "(suggested: {name}).", "警告：该模型的分词器没有对话模板，请选择一个命名模板"
                          "（建议：{name}）。"),
})

METHODS = ("lora", "freeze", "full")
QUANTIZATIONS = ("none", "8", "4")
TOKENIZER_TEMPLATE = "tokenizer"
# The named template of each listed family, used when a tokenizer ships none.
FAMILY_TEMPLATES = {"Qwen 2.5": "qwen", "Qwen 3": "qwen3", "Llama 3.x": "llama3", "GLM-4": "glm4",
                    "Mistral": "mistral", "Gemma 2": "gemma", "Gemma 3": "gemma",
                    "DeepSeek": "deepseek", "Phi": "phi", "TuneLab (built-in)": "chatml"}


@dataclass
class TopBar:
    """The top-bar components the tabs read (values) and listen to (events)."""

    lang: Any
    model: Any
    method: Any
    quantization: Any
    template: Any
    thinking: Any
    adapters: Any
    refresh: Any
    token: Any
    model_status: Any


def template_choices(lang: str) -> list[tuple[str, str]]:
    from tunelab.data.templates import TEMPLATE_NAMES

    return [(t("top.template.tokenizer", lang), TOKENIZER_TEMPLATE)] + [(n, n) for n in TEMPLATE_NAMES]


def adapter_choices(ctx: BoardContext) -> list[tuple[str, str]]:
    """(label, path) for every run under runs_dir and each of its checkpoints, newest run first."""
    from tunelab.runs import RunDir, RunStore

    choices = []
    for run in RunStore([ctx.runs_dir]).discover():
        step = f"{run.step}/{run.total_steps}" if run.step is not None else "-"
        label = f"{run.name} · {run.model} · {run.finetuning_type} · {run.stage} · {run.status} · step {step}"
        choices.append((label, str(run.path)))
        for ckpt in reversed(RunDir(run.path).checkpoints()):
            choices.append((f"{run.name}/{ckpt.name} · {run.status}", str(ckpt)))
    return choices


def check_model(model: str, template: str, lang: str) -> str:
    """One status line on the model path and whether the chosen template differs from its own."""
    model = (model or "").strip()
    if not model:
        return t("top.model.bad", lang, error="no model given")
    try:
        folder = model_folder(model)
        if folder is None:
            return t("top.model.hub", lang, model=model)
        config = check_model_folder(folder)
    except Exception as exc:  # ModelError or a failed built-in build: shown, never raised
        return t("top.model.bad", lang, error=str(exc))
    lines = [t("top.model.ok", lang, model=model, arch=", ".join(config.get("architectures") or ["?"]))]
    own = tokenizer_template(folder)
    if own and template != TOKENIZER_TEMPLATE:
        lines.append(t("top.template.differs", lang, name=template))
    elif not own and template == TOKENIZER_TEMPLATE:
        lines.append(t("top.template.none", lang,
                       name=FAMILY_TEMPLATES.get(family_of(model) or "", "chatml")))
    return "\n\n".join(lines)


def build_top(ctx: BoardContext) -> tuple[TopBar, list[tuple[Any, str, str | None]]]:
    """Lay out the top bar; returns it and its (component, label key, info key) list."""
    import gradio as gr

    lang = ctx.lang
    with gr.Row():
        lang_box = gr.Dropdown([("English", "en"), ("中文", "zh")], value=lang, label=t("top.lang", lang),
                               scale=1, elem_id="top-lang")
        model = gr.Dropdown(model_choices(), value=DEFAULT_MODEL, allow_custom_value=True, filterable=True,
                            label=t("top.model", lang), info=t("top.model.info", lang), scale=4,
                            elem_id="top-model")
        method = gr.Dropdown(list(METHODS), value="lora", label=t("top.method", lang), scale=1,
                             elem_id="top-method")
        quant = gr.Dropdown(list(QUANTIZATIONS), value="none", label=t("top.quantization", lang),
                            info=t("top.quantization.info", lang), scale=1, elem_id="top-quant")
        template = gr.Dropdown(template_choices(lang), value=TOKENIZER_TEMPLATE, label=t("top.template", lang),
                               info=t("top.template.info", lang), scale=2, elem_id="top-template")
        thinking = gr.Checkbox(value=True, label=t("top.thinking", lang), scale=1, elem_id="top-thinking")
    with gr.Row():
        adapters = gr.Dropdown(adapter_choices(ctx), value=[], multiselect=True, label=t("top.adapters", lang),
                               info=t("top.adapters.info", lang), scale=5, elem_id="top-adapters")
        refresh = gr.Button(t("top.refresh", lang), scale=1, elem_id="top-refresh")
        token = gr.Textbox(type="password", label=t("top.token", lang), info=t("top.token.info", lang),
                           scale=2, elem_id="top-token")
    model_status = gr.Markdown(check_model(DEFAULT_MODEL, TOKENIZER_TEMPLATE, lang), elem_id="top-model-status")
    top = TopBar(lang_box, model, method, quant, template, thinking, adapters, refresh, token, model_status)
    _wire(ctx, top)
    labelled = [(lang_box, "top.lang", None), (model, "top.model", "top.model.info"),
                (method, "top.method", None), (quant, "top.quantization", "top.quantization.info"),
                (template, "top.template", "top.template.info"), (thinking, "top.thinking", None),
                (adapters, "top.adapters", "top.adapters.info"), (refresh, "top.refresh", None),
                (token, "top.token", "top.token.info")]
    return top, labelled


def _wire(ctx: BoardContext, top: TopBar) -> None:
    import gradio as gr

    def refresh(selected):
        choices = adapter_choices(ctx)
        known = {value for _, value in choices}
        return gr.update(choices=choices, value=[s for s in selected or [] if s in known])

    def set_token(text):
        # Memory only: never logged or written; the hub client and child processes read the env.
        ctx.hf_token = (text or "").strip() or None
        if ctx.hf_token:
            os.environ["HF_TOKEN"] = ctx.hf_token

    top.refresh.click(refresh, top.adapters, top.adapters)
    top.token.change(set_token, top.token, None)
    for source in (top.model, top.template):
        source.change(check_model, [top.model, top.template, top.lang], top.model_status)

    def relabel(lang, model, template):
        return check_model(model, template, lang), gr.update(choices=template_choices(lang), value=template)

    top.lang.change(relabel, [top.lang, top.model, top.template], [top.model_status, top.template])
