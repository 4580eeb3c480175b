"""The Train tab: recipe controls drawn from the recipe spec, dataset preview, the live step and
memory line, Preview command, Save / Load arguments, Start / Abort / Resume / Continue, and the
live view of the run (progress, loss curve, log) read from its folder."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import tunelab.ui.train_strings  # noqa: F401  (registers the tab's strings)
from tunelab.errors import TuneLabError
from tunelab.ui import train_actions as actions
from tunelab.ui.context import BoardContext
from tunelab.ui.i18n import t
from tunelab.ui.recipe_form import COMMON_KEYS, display_value, make_control, register_spec_strings, spec_map
from tunelab.ui.top import TopBar

PER_PAGE = 3


def guarded(fn: Callable, n_more: int = 0) -> Callable:
    """Run a button's action (first argument: the language); a user error becomes the message
    line, the ``n_more`` other outputs stay as they are (never a stuck spinner)."""
    @functools.wraps(fn)
    def wrapper(*args):
        try:
            return fn(*args)
        except (TuneLabError, OSError, ValueError) as exc:
            import gradio as gr

            text = t("train.msg.error", args[0], error=str(exc).replace("\n", "\n\n"))
            return (text, *[gr.skip()] * n_more) if n_more else text
    return wrapper


def build(ctx: BoardContext, top: TopBar) -> list[tuple[Any, str, str | None]]:
    import gradio as gr

    specs = spec_map()
    register_spec_strings(specs, [k for group in COMMON_KEYS.values() for k in group])
    lang = ctx.lang
    labelled: list[tuple[Any, str, str | None]] = []

    def lab(component, key, info=None):
        labelled.append((component, key, info))
        return component

    with gr.Row():
        stage = lab(gr.Dropdown(list(specs["stage"].choices), value=specs["stage"].default, label=t("train.stage", lang),
                                info=t("train.stage.info", lang), elem_id="train-stage", scale=1),
                    "train.stage", "train.stage.info")
        dataset_dir = lab(gr.Textbox(str(ctx.data_dir), label=t("train.dataset_dir", lang), elem_id="train-dataset-dir",
                                     scale=2), "train.dataset_dir")
        datasets = lab(gr.Dropdown(_dataset_names(ctx, str(ctx.data_dir), specs["stage"].default), multiselect=True,
                                   value=[], label=t("train.datasets", lang), info=t("train.datasets.info", lang),
                                   elem_id="train-datasets", scale=3), "train.datasets", "train.datasets.info")
    with gr.Row():
        name = lab(gr.Textbox("", label=t("train.identity_name", lang), elem_id="train-identity-name"),
                   "train.identity_name")
        author = lab(gr.Textbox("", label=t("train.identity_author", lang), elem_id="train-identity-author"),
                     "train.identity_author")
        page = lab(gr.Number(0, precision=0, minimum=0, label=t("train.page", lang), elem_id="train-page"), "train.page")
        preview_btn = lab(gr.Button(t("train.preview", lang), elem_id="train-preview"), "train.preview")
    preview_out = gr.HTML("", elem_id="train-preview-out")
    controls, groups = {}, {}
    for group, keys in COMMON_KEYS.items():
        with gr.Accordion(t(f"train.group.{group}", lang), open=group == "training") as box:
            groups[group] = box
            labelled.append((box, f"train.group.{group}", None))
            for chunk in range(0, len(keys), 4):
                with gr.Row():
                    for key in keys[chunk:chunk + 4]:
                        controls[key] = lab(make_control(specs[key], lang), f"key.{key}", f"keyhelp.{key}")
    with gr.Row():
        output_dir = lab(gr.Textbox("", label=t("train.output_dir", lang), elem_id="train-output-dir", scale=3),
                         "train.output_dir")
        gpu = lab(gr.Dropdown(_gpu_choices(lang), value="detected",
                              label=t("train.gpu", lang), elem_id="train-gpu", scale=1), "train.gpu")
    extra = lab(gr.Textbox("", lines=3, label=t("train.extra", lang), info=t("train.extra.info", lang),
                           elem_id="train-extra"), "train.extra", "train.extra.info")
    live = gr.Markdown("", elem_id="train-live")
    with gr.Row():
        buttons = {k: lab(gr.Button(t(f"train.{k}", lang), elem_id=f"train-{k.replace('_', '-')}",
                                    variant="primary" if k == "start" else "secondary"), f"train.{k}")
                   for k in ("cmd", "save_args", "load_args", "start", "abort", "resume", "continue")}
    lab(gr.Markdown(t("train.explain", lang)), "train.explain")
    with gr.Row():
        args_path = lab(gr.Textbox(str(ctx.runs_dir / "board_args.yaml"), label=t("train.args_path", lang),
                                   elem_id="train-args-path", scale=2), "train.args_path")
        message = gr.Markdown("", elem_id="train-message")
    with gr.Row():
        with gr.Column(scale=3):
            watch = lab(gr.Dropdown(_run_choices(ctx), value=None, allow_custom_value=True,
                                    label=t("train.watch", lang), elem_id="train-watch"), "train.watch")
            progress = gr.HTML("", elem_id="train-progress")
            loss_plot = lab(gr.LinePlot(x="step", y="loss", color="kind", label=t("train.loss", lang),
                                        elem_id="train-loss", height=260), "train.loss")
        with gr.Column(scale=2):
            log = lab(gr.Textbox("", lines=18, max_lines=18, label=t("train.log", lang), elem_id="train-log",
                                 interactive=False), "train.log")
    with gr.Accordion(t("train.cmd", lang), open=False) as cmd_box:
        labelled.append((cmd_box, "train.cmd", None))
        command = gr.Markdown("", elem_id="train-command")
        yaml_box = lab(gr.Code("", language="yaml", label=t("train.yaml", lang), elem_id="train-yaml",
                               max_lines=30), "train.yaml")
    signature = gr.State(None)

    form_inputs = [top.model, top.method, top.quantization, top.template, top.thinking, stage, dataset_dir, datasets,
                   name, author, output_dir, extra, *controls.values()]
    keys = list(controls)

    def form_of(values) -> actions.Form:
        fixed = values[:12]
        return actions.Form(*fixed, keys=dict(zip(keys, values[12:])))

    def recipe(values, fill=True):
        return actions.recipe_of(ctx, form_of(values), specs, fill_output=fill)

    def on_cmd(lang, *values):
        rec = recipe(values)
        cmd, text = actions.preview_command(ctx, rec)
        return "", f"`{cmd}`", text, rec["output_dir"], gr.update(open=True)

    def on_live(lang, gpu_name, *values):
        try:
            return actions.live_line(recipe(values, fill=False), gpu_name, lang)
        except Exception as exc:  # the line explains what is missing instead of failing
            return t("train.live.error", lang, error=str(exc).splitlines()[0])

    def on_preview(lang, page_no, *values):
        return "", actions.preview_dataset(recipe(values, fill=False), page_no, PER_PAGE, lang)

    def on_start(lang, *values):
        rec = recipe(values)
        run = actions.start(ctx, rec)
        return (t("train.msg.started", lang, path=run), rec["output_dir"],
                gr.update(choices=_run_choices(ctx, extra=str(run)), value=str(run)))

    def on_abort(lang, run):
        if not run:
            return t("train.msg.no_run", lang)
        from tunelab.ui.jobs import abort_training

        return t("train.msg.aborting", lang, pid=abort_training(ctx.resolve_path(run, "run")))

    def on_resume(lang, run):
        if not run:
            return t("train.msg.no_run", lang)
        rec = actions.resume_recipe(ctx.resolve_path(run, "run"))
        return t("train.msg.started", lang, path=actions.start(ctx, rec))

    def on_continue(lang, adapters, run, *values):
        picked = (adapters or [None])[0] or run
        if not picked:
            return t("train.msg.no_adapter", lang), gr.skip(), gr.skip()
        adapter = ctx.resolve_path(picked, "adapter")
        rec = actions.continue_recipe(recipe(values), adapter)
        new_run = actions.start(ctx, rec)
        return (t("train.msg.started", lang, path=new_run), rec["output_dir"],
                gr.update(choices=_run_choices(ctx, extra=str(new_run)), value=str(new_run)))

    def on_save(lang, path, *values):
        from tunelab.train.dry_run import recipe_yaml

        target = ctx.resolve_path(path, "arguments file")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(recipe_yaml(recipe(values, fill=False)), encoding="utf-8")
        return t("train.msg.saved", lang, path=target)

    def on_load(lang, path):
        from tunelab.config.schema import read_yaml

        data = read_yaml(ctx.resolve_path(path, "arguments file"))
        return (t("train.msg.loaded", lang, path=path), *_loaded_values(data, specs, keys))

    def tick(lang, run, old):
        shown = gr.skip()
        if not run:  # a fresh page (refresh, second tab, restarted board) shows the newest run
            run = _initial_run(ctx)
            shown = gr.update(choices=_run_choices(ctx, extra=run), value=run) if run else gr.skip()
        html_text, frame, tail, sig = _snapshot(ctx, run, lang)
        old = old or ("", "", "")
        parts = [value if sig[i] != old[i] else gr.skip() for i, value in enumerate((html_text, frame, tail))]
        return (*parts, sig, shown)

    def on_stage(stage_value, method, dir_text, chosen):
        values = {"stage": stage_value, "finetuning_type": method}
        names = _dataset_names(ctx, dir_text, stage_value)
        updates = [gr.update(choices=names, value=[c for c in chosen or [] if c in names])]
        updates += [gr.update(visible=specs[k].applies(values)) for k in keys]
        updates += [gr.update(visible=any(specs[k].applies(values) for k in COMMON_KEYS[g])) for g in groups]
        return updates

    load_targets = [message, top.model, top.method, top.quantization, top.template, top.thinking, stage, dataset_dir,
                    datasets, name, author, output_dir, extra, *controls.values()]
    lang_in = [top.lang]
    buttons["cmd"].click(guarded(on_cmd, 4), [*lang_in, *form_inputs], [message, command, yaml_box, output_dir, cmd_box])
    preview_btn.click(guarded(on_preview, 1), [*lang_in, page, *form_inputs], [message, preview_out])
    buttons["start"].click(guarded(on_start, 2), [*lang_in, *form_inputs], [message, output_dir, watch])
    buttons["abort"].click(guarded(on_abort), [*lang_in, watch], message)
    buttons["resume"].click(guarded(on_resume), [*lang_in, watch], message)
    buttons["continue"].click(guarded(on_continue, 2), [*lang_in, top.adapters, watch, *form_inputs],
                              [message, output_dir, watch])
    buttons["save_args"].click(guarded(on_save), [*lang_in, args_path, *form_inputs], message)
    buttons["load_args"].click(guarded(on_load, len(load_targets) - 1), [*lang_in, args_path], load_targets)
    visibility = [datasets, *controls.values(), *groups.values()]
    for source in (stage, top.method, dataset_dir):
        source.change(on_stage, [stage, top.method, dataset_dir, datasets], visibility)
    for source in (*controls.values(), datasets, stage, top.method, top.model, top.template, gpu, top.quantization):
        source.change(on_live, [*lang_in, gpu, *form_inputs], live, trigger_mode="always_last",
                      show_progress="hidden")
    gr.Timer(1.0).tick(tick, [*lang_in, watch, signature], [progress, loss_plot, log, signature, watch],
                       show_progress="hidden")
    top.lang.change(lambda lang, value: gr.update(choices=_gpu_choices(lang), value=value), [top.lang, gpu], gpu)
    watch.focus(lambda run: gr.update(choices=_run_choices(ctx, extra=run)), watch, watch)
    return labelled


def _snapshot(ctx: BoardContext, run: str | None, lang: str):
    from tunelab.ui.train_monitor import snapshot

    try:
        path = str(ctx.resolve_path(run, "run")) if run else None
    except TuneLabError:
        path = None
    return snapshot(ctx.runs_dir, path, lang)


def _loaded_values(data: dict, specs: dict, keys: list[str]) -> list[Any]:
    """Control values for a loaded recipe, in the order of ``load_targets`` (message excluded);
    keys without a control go to the extra box."""
    from tunelab.train.dry_run import recipe_yaml
    from tunelab.ui.recipe_form import AUTO

    data = dict(data)
    take = lambda key, default: data.pop(key, default)  # noqa: E731
    quant = take("quantization_bit", None)
    placeholders = take("placeholders", None) or {}
    datasets = take("dataset", "") or ""
    datasets = datasets if isinstance(datasets, list) else [d.strip() for d in str(datasets).split(",") if d.strip()]
    top = [take("model_name_or_path", None), take("finetuning_type", "lora"), str(quant) if quant else "none",
           take("template", None) or actions.TOKENIZER_TEMPLATE, bool(take("enable_thinking", True)),
           take("stage", "sft"), take("dataset_dir", "data"), datasets, placeholders.get("name", ""),
           placeholders.get("author", ""), take("output_dir", "") or ""]
    take("do_train", None)
    values = [display_value(specs[k], take(k, specs[k].default)) for k in keys]
    values = [AUTO if v is None and specs[k].choices else v for k, v in zip(keys, values)]
    return [*top, recipe_yaml(data) if data else "", *values]


def _dataset_names(ctx: BoardContext, dir_text: str, stage: str) -> list[str]:
    from tunelab.data.peek import datasets_for_stage

    try:
        return datasets_for_stage(ctx.resolve_path(dir_text, "dataset dir"), stage)
    except TuneLabError:
        return []


def _gpu_choices(lang: str) -> list[tuple[str, str]]:
    from tunelab.estimate.timing import DEVICES

    return [(t("train.gpu.detected", lang), "detected"), *((name, name) for name in DEVICES)]


def _run_choices(ctx: BoardContext, extra: str | None = None) -> list[tuple[str, str]]:
    from tunelab.ui.top import adapter_choices

    runs = [(label, path) for label, path in adapter_choices(ctx) if "/checkpoint-" not in label.split(" · ")[0]]
    if extra and extra not in {p for _, p in runs}:
        runs.insert(0, (Path(extra).name, extra))
    return runs


def _initial_run(ctx: BoardContext) -> str | None:
    """What a freshly opened page shows: the newest running run, else the newest run."""
    from tunelab.runs import RunStore

    runs = RunStore([ctx.runs_dir]).discover()
    running = [r for r in runs if r.status == "running"]
    chosen = (running or runs or [None])[0]
    return str(chosen.path.resolve()) if chosen else None
