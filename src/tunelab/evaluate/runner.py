"""Run the asked evaluations on each target and record each one (``tunelab eval`` and the
board's Evaluate tab both call ``run_evaluations``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from tunelab.errors import ConfigError
from tunelab.evaluate.harness import BenchmarkSettings
from tunelab.evaluate.loading import evaluation_config, model_source, run_encoding_options
from tunelab.evaluate.results import EvalRecord, record_name, versions
from tunelab.evaluate.target import EvalTarget, resolve_target, unique_labels

if TYPE_CHECKING:
    from tunelab.config.schema import Config

# The recipe keys each kind of evaluation records as its settings (with datasets / tasks).
_SETTINGS = {
    "predict": ("template", "default_system", "enable_thinking", "placeholders", "max_new_tokens",
                "do_sample", "temperature", "top_p", "top_k", "repetition_penalty", "max_batch_size",
                "infer_backend"),
    "perplexity": ("stage", "template", "cutoff_len", "train_on_prompt", "mask_history",
                   "enable_thinking", "default_system", "placeholders"),
    "benchmark": ("template", "enable_thinking", "default_system"),
}
_METRIC_PACKAGES = {"predict": ("jieba", "nltk", "rouge-chinese"), "benchmark": ("lm-eval", "datasets")}


@dataclass
class EvalRequest:
    """Which evaluations to run on which targets. ``keys`` are recipe keys (max_samples,
    dataset_dir, max_new_tokens, cutoff_len, ...) applied to every target."""

    targets: list[str | EvalTarget]
    predict: bool = False
    perplexity: bool = False
    benchmark: BenchmarkSettings | None = None
    datasets: list[str] = field(default_factory=list)
    keys: dict[str, Any] = field(default_factory=dict)
    save_dir: str = "evals"

    def kinds(self) -> list[str]:
        return [k for k, on in (("predict", self.predict), ("perplexity", self.perplexity),
                                ("benchmark", self.benchmark is not None)) if on]


def run_evaluations(request: EvalRequest, log: Callable[[str], None] = lambda line: None,
                    on_record: Callable[[EvalRecord], None] = lambda record: None) -> list[EvalRecord]:
    """Every asked evaluation on every target, each written to ``<folder>/eval/<name>.json``.

    When several targets are compared, all are evaluated with the encoding keys of the first
    run among them (its template, placeholders, cutoff), so they answer the same prompts.
    A Ctrl-C during predictions writes the rows done and their record, then re-raises.
    """
    if not request.targets:
        raise ConfigError("nothing to evaluate", where="TARGET", hint="name a run, a recipe or a model")
    if not request.kinds():
        raise ConfigError("no evaluation chosen", where="tunelab eval",
                          hint="add --predict, --perplexity and/or --tasks NAMES")
    targets = unique_labels([resolve_target(t, request.save_dir) if isinstance(t, str) else t
                             for t in request.targets])
    shared = _shared_encoding(targets) if len(targets) > 1 else {}
    records = []
    for target in targets:
        for kind in request.kinds():
            record = _evaluate(kind, target, request, shared, log)
            records.append(record)
            on_record(record)
    return records


def _shared_encoding(targets: list[EvalTarget]) -> dict[str, Any]:
    for target in targets:
        trained_on = target.adapters[-1] if target.adapters else target.model
        found = run_encoding_options(trained_on) if trained_on else {}
        if found:
            return found
    return {}


def _evaluate(kind: str, target: EvalTarget, request: EvalRequest, shared: dict,
              log: Callable[[str], None]) -> EvalRecord:
    datasets = list(request.datasets or target.datasets)
    keys = {**shared, **target.keys, **request.keys}
    if kind == "predict":
        # Reproducible answers; rows are queued in bursts, so a batch waits until it is full
        # (the prompts are still being rendered) and then runs to its end (no time-slicing).
        keys = {"do_sample": False, "batch_wait_ms": 500, **keys, "batch_slice_tokens": 0}
    cfg = evaluation_config(target.model, target.adapters, datasets, keys, need_data=kind != "benchmark")
    model_name, adapters = model_source(cfg)
    log(f"{kind}: {target.label}")
    started = time.time()
    what = datasets if kind != "benchmark" else request.benchmark.tasks
    record = EvalRecord(kind=kind, name=record_name(kind, what), target=target.spec, label=target.label,
                        model=model_name, adapters=adapters, settings=_settings(kind, cfg, request, what),
                        metrics={}, duration_s=0.0, versions=versions(*_METRIC_PACKAGES.get(kind, ())))
    try:
        _RUNNERS[kind](cfg, target, request, record, log)
    finally:
        record.duration_s = round(time.time() - started, 2)
        if record.metrics or record.status == "interrupted":
            record.write(target.folder)
    if record.status == "interrupted":
        raise KeyboardInterrupt
    return record


def _settings(kind: str, cfg: "Config", request: EvalRequest, what: list[str]) -> dict[str, Any]:
    values = cfg.to_dict()
    settings: dict[str, Any] = {"tasks" if kind == "benchmark" else "datasets": list(what)}
    if kind == "benchmark":
        bench = request.benchmark
        settings.update(num_fewshot=bench.num_fewshot, limit=bench.limit, include_path=bench.include_path,
                        apply_chat_template=bench.apply_chat_template, batch_size=bench.batch_size)
    else:
        settings.update(max_samples=values.get("max_samples"), dataset_dir=values.get("dataset_dir"))
    settings.update({k: values.get(k) for k in _SETTINGS[kind]})
    return settings


def _run_predict(cfg: "Config", target: EvalTarget, request: EvalRequest, record: EvalRecord,
                 log: Callable[[str], None]) -> None:
    from tunelab.evaluate.predict import predict

    outcome = predict(cfg, target.folder / "eval", log)
    record.metrics = outcome.metrics
    record.details = {"predictions": str(outcome.predictions_path), "rows_total": outcome.rows_total,
                      "rows_done": outcome.rows_done, "rows_skipped": outcome.skipped,
                      "generation_s": outcome.generation_s,
                      "rows_per_s": round(outcome.rows_done / max(outcome.generation_s, 1e-9), 3)}
    if outcome.interrupted:
        record.status = "interrupted"
        log(f"interrupted: {outcome.rows_done} of {outcome.rows_total} rows done; their predictions "
            f"are in {outcome.predictions_path}, their metrics in {target.folder / 'eval' / record.name}.json")


def _run_perplexity(cfg: "Config", target: EvalTarget, request: EvalRequest, record: EvalRecord,
                    log: Callable[[str], None]) -> None:
    from tunelab.evaluate.perplexity import perplexity

    result = perplexity(cfg, log)
    record.metrics = result.metrics()
    record.details = {"samples": result.samples}


def _run_benchmark(cfg: "Config", target: EvalTarget, request: EvalRequest, record: EvalRecord,
                   log: Callable[[str], None]) -> None:
    from tunelab.evaluate.harness import run_benchmarks

    outcome = run_benchmarks(cfg, request.benchmark, log)
    record.metrics = outcome.metrics
    record.details = outcome.details


_RUNNERS = {"predict": _run_predict, "perplexity": _run_perplexity, "benchmark": _run_benchmark}
