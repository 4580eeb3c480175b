"""``tunelab train``: wire config, data and model into Hugging Face Trainer, inside a run directory.

Order matters: everything that can fail because of the recipe (config, output rules, tokenizer,
data, model) runs before the run directory is created, so a bad recipe writes nothing.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.errors import ConfigError, RunError
from tunelab.runs import RunDir, new_manifest

if TYPE_CHECKING:
    from tunelab.config.schema import Config


@dataclass
class TrainResult:
    run_dir: Path
    global_step: int
    final_loss: float | None
    plan: Any


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def log(message: str) -> None:
    if is_main_process():
        print(message, flush=True)


def training_kwargs(cfg: "Config", run_path: Path, run_name: str) -> dict[str, Any]:
    """The keyword arguments of Hugging Face TrainingArguments (or of a TRL config, which is a
    subclass) for the recipe: its HF keys plus the keys TuneLab owns."""
    import torch

    from tunelab.config.schema import TRAINING_DEFAULTS

    from tunelab.train.distributed import sharding_kwargs

    kwargs = {**TRAINING_DEFAULTS, **cfg.training, **sharding_kwargs(cfg)}
    if not torch.cuda.is_available():
        # accelerate only forms a gloo process group across CPU processes when told it is on CPU.
        kwargs.setdefault("use_cpu", True)
    kwargs.update(
        output_dir=str(run_path),
        run_name=run_name,
        do_train=cfg.method.do_train,
        do_eval=cfg.method.do_eval,
        include_num_input_tokens_seen="non_padding",
        # Transformers' filter logs a NaN step as the mean of earlier losses (0.0 right after a
        # log); NonFiniteGuard stops at such a step instead, and its loss is logged as it was.
        logging_nan_inf_filter=False,
        disable_tqdm=True,
    )
    return kwargs


def build_arguments(config_class: type, kwargs: dict[str, Any]) -> Any:
    """``config_class(**kwargs)`` (TrainingArguments or a TRL config); a rejected value becomes a
    ConfigError naming the recipe."""
    try:
        return config_class(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{config_class.__name__} rejected the recipe: {exc}", where="recipe") from None


def training_arguments(cfg: "Config", run_path: Path, run_name: str) -> Any:
    """Hugging Face TrainingArguments from the recipe: its HF keys plus the keys TuneLab owns."""
    from transformers import TrainingArguments

    return build_arguments(TrainingArguments, training_kwargs(cfg, run_path, run_name))


def _check_dataset(cfg: "Config") -> None:
    # The stage needs no check here: the recipe's `stage` choices are IMPLEMENTED_STAGES.
    if not cfg.data.dataset:
        raise ConfigError("no training dataset given", where="key 'dataset'",
                          hint="name one or more datasets from dataset_info.json, e.g. dataset: identity")
    wants_eval = cfg.training.get("eval_strategy", "no") != "no" or cfg.training.get("load_best_model_at_end")
    if wants_eval and not cfg.data.val_size and not cfg.data.eval_dataset:
        raise ConfigError("evaluating during training needs held-out data, and there is none",
                          where="key 'eval_strategy'",
                          hint="set val_size (a fraction such as 0.1, or a row count) or eval_dataset")


def run_training(cfg: "Config", command: list[str] | None = None) -> TrainResult:
    """Train as the recipe says and leave a complete run directory; returns where and how far.

    Raises RunError when training stops on a non-finite loss or gradient (the run is marked
    failed) and KeyboardInterrupt after a Ctrl-C / SIGTERM stop (marked interrupted).
    """
    from transformers import set_seed

    from tunelab.model import load_tokenizer
    from tunelab.train.output import clear_for_overwrite, resolve_output, resolve_resume

    _check_dataset(cfg)
    run_path, run_name = resolve_output(cfg)
    resume = resolve_resume(cfg, run_path, guard=is_main_process() and not os.environ.get("TUNELAB_LAUNCHED"))
    args = training_arguments(cfg, run_path, run_name)
    if resume:
        log(f"resuming THIS run from {resume}: optimizer, scheduler, step, RNG and data position "
            "are restored (resume_from_checkpoint)")
    for path in cfg.model.adapter_name_or_path or []:
        log(f"starting a NEW run from the adapter weights in {path} with a fresh optimizer "
            "(adapter_name_or_path)")

    estimate = _print_estimate(cfg, args.world_size)
    _resolve_levers(cfg, estimate)
    tokenizer = load_tokenizer(cfg.model)
    prepared = _prepare_data(cfg, tokenizer, args)
    run = RunDir(run_path)
    plan = _plan(cfg, prepared, args)
    if resume:
        _announce_resume(resume, plan, args, cfg, run)
    # The Trainer seeds only when it is built, after the adapter weights were drawn.
    set_seed(args.seed)
    model = _load_model(cfg)

    if is_main_process():
        if cfg.output.overwrite_output_dir and not resume:
            clear_for_overwrite(run_path)
        _start_manifest(run, cfg, run_name, prepared, resume, command)
    try:
        trainer = _build_trainer(cfg, model, tokenizer, prepared, args, run, plan)
    except BaseException as exc:  # the run list must not show a run that never started as live
        if is_main_process():
            run.set_status("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed",
                           error=f"{type(exc).__name__}: {exc}", global_step=0)
        raise
    return _train(trainer, run, cfg, tokenizer, resume, plan, estimate)


def _plan(cfg: "Config", prepared: Any, args: Any) -> Any:
    from tunelab.train.plan import plan_for

    return plan_for(cfg, samples=prepared.stats.get("samples", len(prepared.train)),
                    rows=len(prepared.train), batch_size=args.per_device_train_batch_size,
                    grad_accum=args.gradient_accumulation_steps, world_size=args.world_size,
                    epochs=args.num_train_epochs, max_steps=args.max_steps,
                    drop_last=args.dataloader_drop_last)


def _announce_resume(resume: str, plan: Any, args: Any, cfg: "Config", run: RunDir) -> None:
    """Say what the resume will do (or refuse one with nothing to do); forget the events of the
    steps that will be trained again, so readers see each step once."""
    from tunelab.train.resume import describe_resume

    before = run.read_manifest().get("config_resolved", {})
    for line in describe_resume(resume, plan, args, cfg.to_dict(), before):
        log(line)
    if is_main_process():
        step = json.loads((Path(resume) / "trainer_state.json").read_text(encoding="utf-8"))["global_step"]
        dropped = run.drop_events_after(step)
        run.append_event({"type": "resume", "step": step, "checkpoint": Path(resume).name,
                          "events_dropped": dropped})


def _prepare_data(cfg: "Config", tokenizer: Any, args: Any) -> Any:
    from tunelab.data.pipeline import prepare_datasets
    from tunelab.data.templates import apply_template

    if cfg.method.stage != "pt" or cfg.data.template or getattr(tokenizer, "chat_template", None):
        apply_template(tokenizer, cfg.data.template)
    elif tokenizer.pad_token is None:  # pre-training a base model needs no chat template, but a pad
        tokenizer.pad_token = tokenizer.eos_token
    with args.main_process_first(desc="tokenising the dataset"):
        prepared = prepare_datasets(cfg, tokenizer, cfg.method.stage)
    for report in prepared.reports:
        if report.problems:
            log(report.format(limit=5))
    return prepared


def _start_manifest(run: RunDir, cfg: "Config", run_name: str, prepared: Any, resume: str | None,
                    command: list[str] | None) -> None:
    manifest = run.read_manifest() if resume else {}
    fresh = new_manifest(
        config_given=cfg.given, config_resolved=cfg.to_dict(), stage=cfg.method.stage,
        method=cfg.method.finetuning_type, model=str(cfg.model.model_name_or_path),
        run_name=run_name, command=command or sys.argv)
    if manifest:
        fresh["created_at"] = manifest.get("created_at", fresh["created_at"])
        fresh["resumed_from"] = manifest.get("resumed_from", []) + [resume]
    fresh["data"] = {"fingerprint": prepared.fingerprint, "stats": prepared.stats,
                     "datasets": cfg.data.dataset}
    run.write_manifest(fresh)


def _build_trainer(cfg: "Config", model: Any, tokenizer: Any, prepared: Any, args: Any,
                   run: RunDir, plan: Any) -> Any:
    """The stage's trainer (from the stage registry), with the callbacks every stage shares."""
    from tunelab.model import trainable_parameters
    from tunelab.train.callbacks import LossProgressCallback, RunEventsCallback
    from tunelab.train.distributed import check_engine, cpu_fsdp_state
    from tunelab.train.levers import install_activation_offload
    from tunelab.train.guards import NonFiniteGuard, StopRequest
    from tunelab.train.stages import STAGES
    from tunelab.train.stages.context import StageContext

    trainable, total = trainable_parameters(model)
    log(f"{cfg.method.finetuning_type}: {trainable:,} trainable of {total:,} parameters "
        f"({100 * trainable / max(total, 1):.4f}%)")
    log(plan.describe())
    callbacks = [NonFiniteGuard(), StopRequest(), RunEventsCallback(run, cfg.model.model_name_or_path),
                 LossProgressCallback()]
    ctx = StageContext(cfg=cfg, model=model, tokenizer=tokenizer, prepared=prepared, args=args,
                       run=run, plan=plan, callbacks=callbacks,
                       training_kwargs=training_kwargs(cfg, run.path, args.run_name))
    with cpu_fsdp_state(args):
        trainer = STAGES[cfg.method.stage].load().build_trainer(ctx)
    engine = check_engine(trainer, cfg)
    if engine != "single":
        log(f"engine: {engine} over {trainer.accelerator.num_processes} processes")
    if cfg.method.gradient_checkpointing == "offload":
        install_activation_offload(trainer)
    return trainer


def _resolve_levers(cfg: "Config", estimate: Any) -> None:
    """Settings decided from the estimate before the model loads (gradient_checkpointing: auto)."""
    from tunelab.train.levers import resolve_checkpointing

    line = resolve_checkpointing(cfg, estimate)
    if estimate is None or estimate.device_memory is None:  # else the estimate printed it
        log(line)


def _load_model(cfg: "Config") -> Any:
    """The model the stage trains: its own ``load_model`` if it has one, else the causal LM."""
    from tunelab.model import load_model, prepare_for_training
    from tunelab.train.stages import STAGES

    module = STAGES[cfg.method.stage].load()
    if hasattr(module, "load_model"):
        return module.load_model(cfg)
    return prepare_for_training(load_model(cfg.model, cfg.training), cfg)


def _print_estimate(cfg: "Config", world_size: int) -> Any:
    """Print the memory estimate before anything heavy loads; warn when it will not fit."""
    from tunelab.cli.format_estimate import format_estimate
    from tunelab.estimate import detect_device_memory, estimate_memory

    try:
        estimate = estimate_memory(cfg, gpu_memory_bytes=detect_device_memory(), num_gpus=world_size)
    except Exception as exc:  # the estimate informs; it must never stop a run that would work
        log(f"memory estimate unavailable: {exc}")
        return None
    if estimate.device_memory is None:
        log(f"estimated peak accelerator memory: {estimate.total / 2**30:.2f} GiB per device "
            "(no GPU detected; `tunelab estimate` shows the breakdown)")
    else:
        log(format_estimate(estimate))
        if estimate.fits is False:
            log("WARNING: this recipe is estimated NOT to fit the GPU; see the suggestions above")
    return estimate


def _train(trainer: Any, run: RunDir, cfg: "Config", tokenizer: Any, resume: str | None,
           plan: Any, estimate: Any) -> TrainResult:
    from tunelab.train.guards import NonFiniteGuard, StopRequest

    stop = _callback(trainer, StopRequest)
    stop.install()
    try:
        output = trainer.train(resume_from_checkpoint=resume)
    except KeyboardInterrupt:
        if is_main_process():
            run.set_status("interrupted", global_step=trainer.state.global_step)
        raise
    except Exception as exc:
        if is_main_process():
            run.set_status("failed", error=f"{type(exc).__name__}: {exc}",
                           global_step=trainer.state.global_step)
        raise _explain_failure(exc, trainer, run, estimate) from exc
    finally:
        stop.uninstall()
    nonfinite = _callback(trainer, NonFiniteGuard).found
    if nonfinite is not None:
        raise _fail_nonfinite(nonfinite, run, plan, trainer.args)
    if stop.step is not None:
        _stop_interrupted(stop, run)
    return _finish(trainer, output, run, cfg, tokenizer, plan)


def _callback(trainer: Any, kind: type) -> Any:
    return next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, kind))


def _finish(trainer: Any, output: Any, run: RunDir, cfg: "Config", tokenizer: Any,
            plan: Any) -> TrainResult:
    from tunelab.train.plot import plot_loss

    if cfg.method.do_eval and trainer.eval_dataset is not None:
        trainer.evaluate()
    trainer.save_model(str(run.path))
    if is_main_process():
        from tunelab.model.adapters import record_base_name
        from tunelab.train.distributed import check_saved_weights

        check_saved_weights(run)
        record_base_name(run.path, cfg.model.model_name_or_path)
        tokenizer.save_pretrained(str(run.path))
        if cfg.output.plot_loss:
            plot_loss(run)
        run.set_status("completed", global_step=output.global_step, train_loss=output.training_loss,
                       metrics=output.metrics, **_best_checkpoint(trainer))
        log(f"run saved in {run.path}")
    return TrainResult(run_dir=run.path, global_step=output.global_step,
                       final_loss=output.training_loss, plan=plan)


def _best_checkpoint(trainer: Any) -> dict[str, Any]:
    """The checkpoint with the best ``metric_for_best_model`` (the Trainer tracks it whenever
    that metric is evaluated; with load_best_model_at_end it is the model saved at the end)."""
    state, args = trainer.state, trainer.args
    if not state.best_model_checkpoint:
        return {}
    return {"best_checkpoint": Path(state.best_model_checkpoint).name, "best_metric": state.best_metric,
            "metric_for_best_model": args.metric_for_best_model,
            "best_model_loaded": bool(args.load_best_model_at_end)}


def _fail_nonfinite(found: Any, run: RunDir, plan: Any, args: Any) -> RunError:
    """Mark the run failed at the step that went NaN/inf; its weights are not saved as final."""
    epoch, first, last = plan.rows_of_step(found.step)
    good = [p.name for p in run.checkpoints() if int(p.name[11:]) < found.step]
    kept = f"the last good checkpoint is {good[-1]}" if good else "no checkpoint was saved before it"
    problem = f"training went non-finite at step {found.step}: {found.what}; {kept}"
    hint = (f"lower learning_rate (now {args.learning_rate:g}) or set max_grad_norm; check the data "
            f"of that step: rows {first}-{last} of epoch {epoch} in the epoch's shuffled order "
            f"(effective batch {plan.effective_batch})")
    if is_main_process():
        run.set_status("failed", error=problem, hint=hint, global_step=found.step)
    return RunError(problem, where=f"run {run.path}", hint=hint)


def _stop_interrupted(stop: Any, run: RunDir) -> None:
    """After a Ctrl-C / SIGTERM stop: checkpoint saved, run marked interrupted, exit as Ctrl-C."""
    if is_main_process():
        run.set_status("interrupted", global_step=stop.step, signal=stop.signal_name)
        log(f"stopped by {stop.signal_name} at step {stop.step}; saved checkpoint-{stop.step}. "
            f"Continue THIS run with resume_from_checkpoint=last (output_dir={run.path})")
    raise KeyboardInterrupt


def _explain_failure(exc: Exception, trainer: Any, run: RunDir, estimate: Any) -> Exception:
    """An out-of-memory error becomes a RunError with the step, estimate, peak and suggestions."""
    from tunelab.estimate import explain_oom, is_oom_error

    if not is_oom_error(exc):
        return exc
    import torch

    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated()
    else:  # on CPU the process's peak resident memory is the closest measure
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return RunError(explain_oom(exc, step=trainer.state.global_step, estimate=estimate, peak_bytes=peak),
                    where=f"run {run.path}")
