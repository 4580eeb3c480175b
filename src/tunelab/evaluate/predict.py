"""Generate an answer for every row of a dataset and score it against the row's own answer.

Generation goes through the ChatEngine (the same prompts, template and stop tokens as chat and
the API), which batches the requests in flight into shared ``generate`` calls. Each finished
row is appended to ``generated_predictions.jsonl`` at once, so a Ctrl-C leaves every row done so
far on disk.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from tunelab.errors import DataError
from tunelab.evaluate.progress import Progress
from tunelab.evaluate.similarity import Scored, similarity_metrics

if TYPE_CHECKING:
    from tunelab.config.schema import Config

PREDICTIONS_FILE = "generated_predictions.jsonl"


@dataclass
class PromptRow:
    """One dataset row as a question: the conversation up to its last answer, and that answer."""

    source: str
    messages: list[dict]
    tools: list[dict] | None
    label: str


@dataclass
class PredictOutcome:
    """Rows answered (all of them unless ``interrupted``), their metrics and where they are."""

    rows_total: int
    answers: list[Scored]
    predictions_path: Path
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    generation_s: float = 0.0  # from the first request to the last answer (model load excluded)

    @property
    def rows_done(self) -> int:
        return len(self.answers) + self.failed


def prompt_rows(cfg: "Config") -> tuple[list[PromptRow], int]:
    """(rows ending with an assistant answer, count of rows skipped for not ending so)."""
    from tunelab.data.report import load_samples

    samples, _ = load_samples(cfg.data, list(cfg.data.dataset), "sft")
    rows, skipped = [], 0
    for conv in samples:
        messages = conv.to_chat_messages(None)  # the engine adds default_system, as in chat
        if not messages or messages[-1]["role"] != "assistant":
            skipped += 1
            continue
        rows.append(PromptRow(conv.source, messages[:-1], conv.chat_tools(), messages[-1]["content"]))
    if not rows:
        raise DataError(f"none of its {len(samples)} rows ends with an assistant answer to compare with",
                        where=f"dataset {','.join(cfg.data.dataset)}",
                        hint="--predict needs sft data (instruction + output, or conversations)")
    return rows, skipped


def predict(cfg: "Config", out_dir: Path, log: Callable[[str], None] = lambda line: None) -> PredictOutcome:
    """Answer every row of ``cfg.data.dataset`` with the recipe's model (+ its last adapter),
    write ``out_dir/generated_predictions.jsonl`` (prompt, label, prediction, ...) and score it.
    A Ctrl-C stops generating and returns what was done with ``interrupted`` set."""
    from tunelab.infer import create_engine

    rows, skipped = prompt_rows(cfg)
    log(f"predict: {len(rows)} rows of {', '.join(cfg.data.dataset)}"
        + (f" ({skipped} without a final answer skipped)" if skipped else ""))
    engine = create_engine(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcome = PredictOutcome(len(rows), [], out_dir / PREDICTIONS_FILE, skipped=skipped)
    started = time.perf_counter()
    try:
        with outcome.predictions_path.open("w", encoding="utf-8") as sink:
            _generate_all(engine, rows, sink, outcome, log)
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        outcome.generation_s = round(time.perf_counter() - started, 3)
        engine.close()
    outcome.metrics = {**similarity_metrics(outcome.answers), "rows": len(outcome.answers),
                       "failed_rows": outcome.failed}
    return outcome


def _generate_all(engine: Any, rows: list[PromptRow], sink: Any, outcome: PredictOutcome,
                  log: Callable[[str], None]) -> None:
    """Keep two batches of requests in flight (the next batch is queued while one generates) and
    write the answers in row order as they complete."""
    from tunelab.infer import ChatRequest, RequestError

    window = 2 * max(1, engine.cfg.infer.max_batch_size)
    pending: deque = deque()
    todo = iter(enumerate(rows))
    with Progress(len(rows), "predict", "rows", log) as bar:
        try:
            while True:
                while len(pending) < window and (item := next(todo, None)) is not None:
                    index, row = item
                    try:
                        job = engine.start(ChatRequest(messages=row.messages, tools=row.tools))
                    except RequestError as exc:  # e.g. a prompt longer than the model's context
                        job = exc
                    pending.append((index, row, job))
                if not pending:
                    return
                _write(sink, *pending.popleft(), engine, outcome)
                bar.update()
        finally:
            for _, _, job in pending:
                if not isinstance(job, Exception):
                    job.close()


def _write(sink: Any, index: int, row: PromptRow, job: Any, engine: Any, outcome: PredictOutcome) -> None:
    record: dict[str, Any] = {"index": index, "source": row.source, "label": row.label}
    if isinstance(job, Exception):
        record.update(prompt=None, prediction="", error=str(job))
        outcome.failed += 1
    else:
        choice = _answer(job)
        tokenizer = job.prepared.served.tokenizer
        record.update(prompt=tokenizer.decode(job.prepared.prompt_ids, skip_special_tokens=False),
                      prediction=choice.content, finish_reason=choice.finish_reason,
                      tokens=choice.completion_tokens)
        if choice.reasoning:
            record["reasoning"] = choice.reasoning
        outcome.answers.append(Scored(row.label, choice.content, choice.finish_reason,
                                      choice.completion_tokens))
    sink.write(json.dumps(record, ensure_ascii=False) + "\n")
    sink.flush()


def _answer(job: Any) -> Any:
    response = job.response()
    for delta in job:
        response.choices[delta.index].add(delta)
    return response.choices[0]
