"""What the Train tab's buttons do, as plain functions of the form's values (no Gradio here):
the recipe the form describes, the live step/memory line, dataset preview, start / abort /
resume / continue. Each calls the functions the CLI calls."""

from __future__ import annotations

import html
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tunelab.errors import ConfigError, RunError
from tunelab.ui.context import BoardContext
from tunelab.ui.i18n import t
import tunelab.ui.train_strings  # noqa: F401  (registers the strings used here)
from tunelab.ui.recipe_form import control_value, parse_extra, validate

TOKENIZER_TEMPLATE = "tokenizer"
_ROWS_CACHE: dict[str, tuple[int, int]] = {}


@dataclass
class Form:
    """The Train tab's inputs plus the top bar's, as the recipe needs them."""

    model: str
    method: str
    quantization: str
    template: str
    thinking: bool
    stage: str
    dataset_dir: str
    datasets: list[str]
    identity_name: str
    identity_author: str
    output_dir: str
    extra: str
    keys: dict[str, Any]  # spec key -> raw control value


def recipe_of(ctx: BoardContext, form: Form, specs: dict[str, Any], fill_output: bool = True) -> dict[str, Any]:
    """The recipe dict the form describes: keys that differ from their spec default, plus the
    model, method, stage, data and output keys; typed paths checked against the roots."""
    recipe: dict[str, Any] = {"model_name_or_path": (form.model or "").strip(), "stage": form.stage,
                              "do_train": True, "finetuning_type": form.method}
    if form.quantization not in ("none", "", None):
        recipe["quantization_bit"] = int(form.quantization)
    if form.template and form.template != TOKENIZER_TEMPLATE:
        recipe["template"] = form.template
    recipe["dataset"] = ",".join(form.datasets or [])
    recipe["dataset_dir"] = _shown(ctx.resolve_path(form.dataset_dir, "dataset dir"))
    names = {k: v.strip() for k, v in (("name", form.identity_name), ("author", form.identity_author)) if v and v.strip()}
    if names:
        recipe["placeholders"] = names
    if not form.thinking:
        recipe["enable_thinking"] = False
    values = {"finetuning_type": form.method, "stage": form.stage}
    for key, raw in form.keys.items():
        spec = specs[key]
        value = control_value(spec, raw)
        if value is not None and value != spec.default and spec.applies({**values}):
            recipe[key] = value
    if form.output_dir.strip() or fill_output:
        recipe["output_dir"] = _shown(output_path(ctx, form))
    recipe.update(parse_extra(form.extra))
    return recipe


def output_path(ctx: BoardContext, form: Form) -> Path:
    """The typed output dir (checked), else a fresh <runs_dir>/<model>/<method>/<stage>-<time>."""
    if form.output_dir.strip():
        return ctx.resolve_path(form.output_dir, "output dir")
    model = Path(str(form.model).rstrip("/")).name or "model"
    return ctx.runs_dir.resolve() / model / form.method / f"{form.stage}-{time.strftime('%Y%m%d-%H%M%S')}"


def _shown(path: Path) -> str:
    """A path as the recipe shows it: relative to the working directory when under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def preview_command(ctx: BoardContext, recipe: dict[str, Any]) -> tuple[str, str]:
    """(the exact command, the YAML it runs), after validating the recipe like the CLI does."""
    from tunelab.train.dry_run import recipe_yaml
    from tunelab.ui.jobs import job_files

    validate(recipe)
    recipe_path, _ = job_files(ctx.runs_dir, Path(recipe["output_dir"]))
    return f"tunelab train {_shown(recipe_path.resolve())}", recipe_yaml(recipe)


def live_line(recipe: dict[str, Any], gpu: str, lang: str) -> str:
    """samples -> effective batch -> steps per epoch -> total steps, and the memory verdict, from
    the functions `tunelab train --dry-run` uses."""
    from tunelab.train.dry_run import count_rows, memory_estimate, step_plan

    cfg = validate(recipe)
    key = json.dumps([asdict(cfg.data), cfg.model.model_name_or_path, cfg.method.stage], default=str)
    if key not in _ROWS_CACHE:
        _ROWS_CACHE[key] = count_rows(cfg)
    plan = step_plan(cfg, *_ROWS_CACHE[key])
    lines = [t("train.live.plan", lang, samples=plan.samples, batch=plan.effective_batch,
               per_epoch=plan.steps_per_epoch, total=plan.total_steps)]
    if plan.max_steps > 0:
        lines.append(t("train.live.max_steps", lang, max_steps=plan.max_steps,
                       epochs=plan.total_steps / max(plan.steps_per_epoch, 1)))
    estimate, error = memory_estimate(cfg, _gpu_bytes(gpu))
    lines.append(_memory_text(estimate, error, lang))
    return "\n\n".join(lines)


def _gpu_bytes(gpu: str) -> int | None:
    from tunelab.estimate import detect_device_memory
    from tunelab.estimate.timing import DEVICES

    return DEVICES[gpu][0] * 1024**3 if gpu in DEVICES else detect_device_memory()


def _memory_text(estimate: Any, error: str | None, lang: str) -> str:
    if estimate is None:
        return t("train.live.memory_unknown", lang, error=error)
    gib = estimate.total / 2**30
    if estimate.fits is None:
        return t("train.live.memory_nogpu", lang, gib=gib)
    if estimate.fits:
        return t("train.live.memory_fits", lang, gib=gib, device=estimate.device_memory / 2**30)
    tips = "; ".join(s.description for s in estimate.suggestions[:3]) or "-"
    return t("train.live.memory_nofit", lang, gib=gib, device=estimate.device_memory / 2**30, tips=tips)


def preview_dataset(recipe: dict[str, Any], page: int, per_page: int, lang: str) -> str:
    """HTML of one page of the first chosen dataset, rendered by the chat template, with the
    trained tokens highlighted."""
    from tunelab.data.peek import preview_page
    from tunelab.data.pipeline import encoding_options
    from tunelab.data.preview import TRAIN_CLOSE, TRAIN_OPEN
    from tunelab.data.templates import apply_template
    from tunelab.model import load_tokenizer

    cfg = validate(recipe)
    if not cfg.data.dataset:
        raise ConfigError(t("train.preview.no_dataset", lang), where="datasets")
    tokenizer = load_tokenizer(cfg.model)
    if cfg.method.stage != "pt":
        apply_template(tokenizer, cfg.data.template)
    name = cfg.data.dataset[0]
    rows = preview_page(name, cfg.data, cfg.method.stage, tokenizer, encoding_options(cfg.data, cfg.method.stage),
                        int(page or 0), per_page)
    parts = [f"<p>{html.escape(t('train.preview.header', lang, name=name, page=int(page or 0) + 1))}</p>"]
    for row in rows:
        parts.append(f"<h4>{html.escape(row.location)}</h4>")
        if row.skipped or row.view.note:
            parts.append(f"<p class='skipped'>{html.escape(row.skipped or row.view.note)}</p>")
            continue
        for side in row.view.sides:
            marked = html.escape(side.marked).replace(html.escape(TRAIN_OPEN), "<mark class='trained'>")
            marked = marked.replace(html.escape(TRAIN_CLOSE), "</mark>")
            counts = t("train.preview.counts", lang, tokens=side.tokens, trained=side.trained)
            label = f"<b>{html.escape(side.label)}</b>: " if side.label else ""
            parts.append(f"<p>{label}{html.escape(counts)}</p><pre class='preview-row'>{marked}</pre>")
    if not rows:
        parts.append(f"<p>{html.escape(t('train.preview.empty', lang))}</p>")
    return "<div id='train-preview-rows'>" + "".join(parts) + "</div>"


def start(ctx: BoardContext, recipe: dict[str, Any]) -> Path:
    """Validate the recipe and start `tunelab train` on it; returns the run folder."""
    from tunelab.train.dry_run import recipe_yaml
    from tunelab.ui.jobs import start_training

    validate(recipe)
    run_path = Path(recipe["output_dir"]).resolve()
    start_training(ctx.runs_dir, run_path, recipe_yaml(recipe), ctx.hf_token)
    return run_path


def resume_recipe(run_path: Path) -> dict[str, Any]:
    """The run's own recipe with resume_from_checkpoint=last: the SAME run goes on."""
    from tunelab.runs import RunDir

    run = RunDir(run_path)
    manifest = run.read_manifest()
    if not manifest:
        raise RunError("this folder holds no run (no manifest.json)", where=str(run_path))
    if not run.checkpoints():
        raise RunError("the run has no checkpoint-N folder to resume from", where=str(run_path),
                       hint="set save_steps lower, or use Continue from adapter on its final weights")
    recipe = dict(manifest.get("config_given") or {})
    recipe.update(output_dir=str(Path(run_path).resolve()), resume_from_checkpoint="last")
    return recipe


def continue_recipe(recipe: dict[str, Any], adapter: Path) -> dict[str, Any]:
    """The form's recipe starting from ``adapter``'s weights: a NEW run, fresh optimizer."""
    if Path(recipe.get("output_dir", "")).resolve() == Path(adapter).resolve():
        raise ConfigError("the new run needs its own output dir", where="output dir",
                          hint="clear the output dir box (a fresh folder is chosen) or type another")
    return {**recipe, "adapter_name_or_path": [str(adapter)]}
