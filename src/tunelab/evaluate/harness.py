"""Benchmarks through EleutherAI's lm-evaluation-harness (the optional extra ``eval``).

Its task names work unchanged (mmlu, cmmlu, ceval-valid, gsm8k, hellaswag, ...), and local task
folders (``include_path``) are read as lm-eval reads them. The model is the one TuneLab serves:
the base with the run's adapters, and the tokenizer (chat template included) the run saved.
Tasks are built before the model loads, so a dataset that cannot be fetched is reported first,
by name, with where to put it.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tunelab.errors import ConfigError, DataError
from tunelab.evaluate.loading import load_scored_model, model_source, training_tokenizer

if TYPE_CHECKING:
    from tunelab.config.schema import Config

# Exceptions by which `datasets` / `huggingface_hub` say the hub could not be reached.
_UNREACHABLE = {"ConnectionError", "OfflineModeIsEnabled", "LocalEntryNotFoundError",
                "DatasetNotFoundError", "HfHubHTTPError", "ConnectTimeout", "ReadTimeout"}
FEWSHOT_SEED = 1234  # lm-eval's own default, so few-shot examples match its command line


@dataclass
class BenchmarkSettings:
    """What to run: task names (or YAML paths), few-shot count, rows per task, local task folders,
    whether prompts go through the chat template, and the harness's batch size."""

    tasks: list[str]
    num_fewshot: int | None = None
    limit: float | None = None
    include_path: list[str] = field(default_factory=list)
    apply_chat_template: bool = False
    batch_size: int = 8


@dataclass
class BenchmarkOutcome:
    metrics: dict[str, float]
    details: dict[str, Any]


def _lm_eval() -> Any:
    try:
        import lm_eval  # noqa: F401
        from lm_eval import evaluator
    except ImportError:
        raise ConfigError("benchmarks need EleutherAI's lm-evaluation-harness, which is not installed",
                          where="--tasks", hint="pip install 'tunelab[eval]'") from None
    # Its warnings about a model passed in as an object are about its own loader, not ours.
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    return evaluator


def load_tasks(settings: BenchmarkSettings, log: Callable[[str], None]) -> tuple[Any, list[Any]]:
    """(task manager, the built tasks and groups to run); every dataset is fetched here."""
    from lm_eval.tasks import TaskManager

    for folder in settings.include_path:
        if not Path(folder).is_dir():
            raise ConfigError(f"task folder {folder} does not exist", where="--include-path",
                              hint="give a folder that holds lm-eval task YAML files")
    manager = None
    if settings.include_path:  # local names alone need no index of lm-eval's ~15k own tasks
        manager = TaskManager(include_path=settings.include_path, include_defaults=False)
        if not all(name in manager.all_tasks or Path(name).is_file() for name in settings.tasks):
            manager = None
    if manager is None:
        log("indexing lm-eval's tasks")
        manager = TaskManager(include_path=settings.include_path or None)
    return manager, [obj for name in settings.tasks for obj in _build(manager, name)]


def _build(manager: Any, name: str) -> list[Any]:
    """The group (or the task, or a tag's tasks) called ``name``, datasets loaded."""
    if name not in manager.all_tasks and not Path(name).is_file():
        close = difflib.get_close_matches(name, manager.all_tasks, n=3)
        raise ConfigError(f"lm-eval has no task, group or tag '{name}'", where="--tasks",
                          hint=(f"did you mean {', '.join(close)}? " if close else "")
                          + "`lm-eval ls tasks` lists them; your own task folders go in --include-path")
    try:
        loaded = manager.load([name])
    except Exception as exc:
        if _unreachable(exc):
            raise _offline_error(name, exc) from None
        raise
    groups = loaded.get("groups") or {}
    return [groups[name]] if name in groups else list(loaded["tasks"].values())


def _unreachable(exc: BaseException) -> bool:
    while exc is not None:
        if type(exc).__name__ in _UNREACHABLE:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _offline_error(name: str, exc: BaseException) -> DataError:
    """Which dataset could not be fetched (read from the task being built) and how to supply it."""
    from datasets import config as datasets_config

    config = _failing_task_config(exc)
    dataset = getattr(config, "dataset_path", None) or "?"
    subset = getattr(config, "dataset_name", None)
    what = f"'{dataset}'" + (f" (subset '{subset}')" if subset else "")
    fetch = f"datasets.load_dataset('{dataset}'" + (f", '{subset}'" if subset else "") + ")"
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataError(
        f"task '{getattr(config, 'task', name)}' needs the dataset {what} from the Hugging Face Hub, "
        f"which cannot be reached from here: {reason}", where=f"--tasks {name}",
        hint=f"on a machine with access run `python -c \"import datasets; {fetch}\"`, copy its datasets "
        f"cache here and point HF_DATASETS_CACHE at the copy (now {datasets_config.HF_DATASETS_CACHE}); "
        "or write a local task folder whose YAML reads local files and pass it with --include-path")


def _failing_task_config(exc: BaseException) -> Any:
    """The TaskConfig of the task whose dataset load raised ``exc`` (from the traceback)."""
    tb, found = exc.__traceback__, None
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if hasattr(getattr(owner, "config", None), "dataset_path"):
            found = owner.config
        tb = tb.tb_next
    return found


def run_benchmarks(cfg: "Config", settings: BenchmarkSettings,
                   log: Callable[[str], None] = lambda line: None) -> BenchmarkOutcome:
    """Scores of the recipe's model (+ adapters) on the tasks: "<task>/<metric>" -> value."""
    evaluator = _lm_eval()
    manager, tasks = load_tasks(settings, log)
    model_name, adapters = model_source(cfg)
    log(f"loading {model_name}" + (f" with {', '.join(adapters)}" if adapters else ""))
    lm = _harness_model(cfg, model_name, adapters, settings)
    for task in manager.load(tasks)["tasks"].values():
        _set_fewshot(task, settings.num_fewshot)
    results = evaluator.evaluate(lm=lm, task_dict=manager.load(tasks), limit=settings.limit,
                                 apply_chat_template=settings.apply_chat_template,
                                 fewshot_as_multiturn=settings.apply_chat_template, log_samples=False)
    return BenchmarkOutcome(_flat_metrics(results), _details(results))


def _set_fewshot(task: Any, num_fewshot: int | None) -> None:
    """lm-eval's rule: ``num_fewshot`` replaces a task's default unless the task fixes it at 0;
    a task without a default runs zero-shot."""
    default = task.get_config("num_fewshot")
    if num_fewshot is not None and default != 0:
        task.set_config(key="num_fewshot", value=num_fewshot)
    elif default is None:
        task.set_config(key="num_fewshot", value=0)
    task.set_fewshot_seed(seed=FEWSHOT_SEED)


def _harness_model(cfg: "Config", model_name: str, adapters: list[str], settings: BenchmarkSettings) -> Any:
    from lm_eval.models.huggingface import HFLM

    from tunelab.data.templates import apply_template
    from tunelab.infer.prompt import THINK_CLOSE, template_features

    tokenizer = training_tokenizer(cfg, adapters)
    extra: dict[str, Any] = {}
    if settings.apply_chat_template:
        if cfg.data.template or not adapters:
            apply_template(tokenizer, cfg.data.template, cfg.data.default_system)
        if template_features(tokenizer)["think"]:  # the harness then scores what follows </think>
            extra = {"enable_thinking": cfg.data.enable_thinking, "think_end_token": THINK_CLOSE}
    model = load_scored_model(cfg, model_name, adapters)
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=settings.batch_size, **extra)


def _flat_metrics(results: dict) -> dict[str, float]:
    """{"mmlu/acc": 0.41, "mmlu/acc_stderr": 0.01, ...} for every task and group."""
    flat = {}
    for section in ("results", "groups"):
        for task, values in (results.get(section) or {}).items():
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    flat[f"{task}/{key.split(',')[0]}"] = float(value)
    return flat


def _details(results: dict) -> dict[str, Any]:
    keep = ("n-shot", "n-samples", "versions", "higher_is_better", "group_subtasks")
    return {key: results[key] for key in keep if key in results}
