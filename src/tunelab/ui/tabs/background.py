"""Long work of a tab (export, evaluation) in a background thread, one job at a time, with its
log lines handed to the page as they come, so the page stays live and a failure ends as a
message instead of a stuck spinner."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

_END = object()


@dataclass
class JobUpdate:
    """The job's log so far; at the end ``done`` with its ``result`` or ``error``."""

    log: str
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    busy: bool = False


class BackgroundJob:
    """Runs ``work(log)`` in a thread; a second start while one runs is refused (``busy``)."""

    def __init__(self) -> None:
        self._busy = threading.Lock()

    def stream(self, work: Callable[[Callable[[str], None]], Any]) -> Iterator[JobUpdate]:
        if not self._busy.acquire(blocking=False):
            yield JobUpdate("", done=True, busy=True)
            return
        try:
            yield from self._stream(work)
        finally:
            self._busy.release()

    @staticmethod
    def _stream(work: Callable[[Callable[[str], None]], Any]) -> Iterator[JobUpdate]:
        lines: queue.Queue = queue.Queue()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = work(lambda line: lines.put(str(line)))
            except BaseException as exc:  # reported to the page by the caller
                outcome["error"] = exc
            finally:
                lines.put(_END)

        threading.Thread(target=run, name="tunelab-board-job", daemon=True).start()
        log: list[str] = []
        while (line := lines.get()) is not _END:
            log.append(line)
            yield JobUpdate("\n".join(log))
        yield JobUpdate("\n".join(log), done=True, result=outcome.get("result"), error=outcome.get("error"))
