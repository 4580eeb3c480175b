"""Reading registered datasets into samples, with an account of every row that was skipped."""

from __future__ import annotations

from dataclasses import dataclass, field

from tunelab.config.data import DataArgs
from tunelab.data.conversation import PromptSample, Sample
from tunelab.data.convert import RowError, to_sample
from tunelab.data.convert_stages import check_columns
from tunelab.data.kinds import sample_kind
from tunelab.data.readers import read_rows
from tunelab.data.registry import resolve
from tunelab.errors import DataError


@dataclass
class Problem:
    """A skipped row: where it is (``file:row``) and why."""

    location: str
    reason: str


@dataclass
class ValidationReport:
    """What happened to one dataset's rows."""

    dataset: str
    total: int = 0
    valid: int = 0
    problems: list[Problem] = field(default_factory=list)
    dropped_truncated: int = 0  # usable rows with no trained token left after cutoff_len

    @property
    def ok(self) -> bool:
        """No row was skipped."""
        return not self.problems

    @property
    def usable(self) -> bool:
        """At least one row can be trained on: the one rule ``train`` and ``data validate`` share."""
        return self.valid > 0

    def summary(self) -> str:
        """One line: ``name: 98/100 rows usable, 2 skipped``."""
        skipped = f", {len(self.problems)} skipped" if self.problems else ""
        dropped = (f", {self.dropped_truncated} dropped (no answer token left within cutoff_len)"
                   if self.dropped_truncated else "")
        return f"{self.dataset}: {self.valid}/{self.total} rows usable{skipped}{dropped}"

    def format(self, limit: int | None = 10) -> str:
        """The summary and up to ``limit`` problems (None: all), one ``file:row: reason`` per line.

        Consecutive rows of one file with the same reason share a line (``file:3-40``), so a
        wrong column mapping reads as one problem, not two hundred.
        """
        groups = _group(self.problems)
        shown = groups if limit is None else groups[:limit]
        lines = [self.summary()] + [f"  {where}: {reason}" for where, reason in shown]
        if len(shown) < len(groups):
            lines.append(f"  ... and {len(groups) - len(shown)} more "
                         f"(`tunelab data validate {self.dataset}` lists them all)")
        return "\n".join(lines)


def _group(problems: list[Problem]) -> list[tuple[str, str]]:
    """``(location or file:first-last, reason)`` with runs of consecutive rows merged."""
    groups: list[list] = []  # [file, first, last, reason] or [location, None, None, reason]
    for p in problems:
        file, _, row = p.location.rpartition(":")
        last = groups[-1] if groups else None
        if row.isdigit() and last and last[1] is not None and last[0] == file \
                and last[3] == p.reason and last[2] + 1 == int(row):
            last[2] = int(row)
        elif row.isdigit():
            groups.append([file, int(row), int(row), p.reason])
        else:
            groups.append([p.location, None, None, p.reason])
    return [(g[0] if g[1] is None else f"{g[0]}:{g[1]}" + (f"-{g[2]}" if g[2] != g[1] else ""), g[3])
            for g in groups]


def load_samples(cfg_data: DataArgs, names: list[str] | str, stage: str, strict: bool = True,
                 required: dict[str, str] | None = None) -> tuple[list[Sample], list[ValidationReport]]:
    """Samples of the named datasets (in order) and one report per dataset.

    Bad rows are skipped and listed in the reports; ``required`` (column -> why) names the
    columns every prompt row must have (those the grpo reward functions read). With ``strict``,
    a dataset with no usable row raises DataError giving the row count and the first reasons.
    """
    samples: list[Sample] = []
    reports = []
    for spec in resolve(names, cfg_data.dataset_dir):
        rows = read_rows(spec, cfg_data.dataset_dir, cfg_data.max_samples)
        report = ValidationReport(spec.name, total=len(rows))
        for location, row in rows:
            try:
                sample = to_sample(row, spec, location, stage, cfg_data.placeholders)
                if required and isinstance(sample, PromptSample):
                    check_columns(sample, required)
                samples.append(sample)
                report.valid += 1
            except RowError as exc:
                report.problems.append(Problem(location, exc.reason))
        if strict and not report.usable:
            raise no_valid_rows_error(report)
        reports.append(report)
    return samples, reports


def required_columns(cfg, stage: str) -> dict[str, str]:
    """Columns every prompt row must have, with why: those the recipe's grpo reward functions
    read (``accuracy`` reads ``answer``). Importing a user's reward module may raise ConfigError."""
    rewards = getattr(getattr(cfg, "rl", None), "reward_funcs", None)
    if sample_kind(stage) != "prompt" or not rewards:
        return {}
    from tunelab.rewards import required_columns as reward_columns

    return reward_columns(rewards)


def no_valid_rows_error(report: ValidationReport, shown: int = 3) -> DataError:
    """The error for a dataset none of whose rows can be used, with the first reasons."""
    if report.total == 0:
        return DataError("has no rows (an empty file or an empty list)",
                         where=f"dataset '{report.dataset}'",
                         hint="check that the file is not empty and file_name points at it")
    reasons = "\n".join(f"    {p.location}: {p.reason}" for p in report.problems[:shown])
    more = f"\n    ... and {len(report.problems) - shown} more" if len(report.problems) > shown else ""
    return DataError(f"none of its {report.total} rows can be used; first problems:\n{reasons}{more}",
                     where=f"dataset '{report.dataset}'",
                     hint=f"`tunelab data validate {report.dataset}` lists every problem")
