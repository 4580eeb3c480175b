"""A progress bar with ETA for long evaluations: tqdm on the terminal, and a line for the log
(the board shows the log) each time another tenth of the work is done."""

from __future__ import annotations

import sys
from typing import Callable


class Progress:
    """``update(n)`` as work is done; ``close()`` at the end (also usable as a context manager)."""

    def __init__(self, total: int, desc: str, unit: str, log: Callable[[str], None] = lambda line: None):
        from tqdm.auto import tqdm

        self.total, self.desc, self.unit, self.log = total, desc, unit, log
        self.done = 0
        self._next_tenth = 1
        self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)

    def update(self, n: int = 1) -> None:
        self.done += n
        self.bar.update(n)
        if self.total and self.done * 10 >= self._next_tenth * self.total:
            self._next_tenth = self.done * 10 // self.total + 1
            rate = self.bar.format_dict.get("rate")
            eta = f", about {(self.total - self.done) / rate:.0f} s left" if rate else ""
            self.log(f"{self.desc}: {self.done}/{self.total} {self.unit}{eta}")

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
