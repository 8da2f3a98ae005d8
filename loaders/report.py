"""What each stage prints (docs/architecture.md, contract 7): rows, bytes, time, where the output went."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from .build import DbtReport
from .console import JsonLines, LogFormat, Measure, NoTask, Task, TaskFactory, rich_tasks
from .extract import BatchReport
from .load import BatchLoadReport
from .runs import Run
from .sources.bootstrap import BulkLoadReport

Echo = Callable[[str], None]


def mb(n: int) -> str:
    """A byte count for people: `1.4 MB`, `83.0 kB`."""
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


@dataclass
class Reporter:
    """Prints what each stage did; `progress` receives transient progress messages and `tasks`
    draws progress bars (both only on a terminal, loaders/console.py).

    `run` collects the outcome of every unit of work of this invocation (loaders/runs.py).
    """

    echo: Echo = print
    progress: Callable[[str], None] | None = None
    started: float = field(default_factory=time.perf_counter)
    run: Run = field(default_factory=Run)
    tasks: TaskFactory | None = None

    @property
    def shows_progress(self) -> bool:
        """Whether progress bars are drawn (a terminal): worth an extra query for a total."""
        return self.tasks is not None

    def task(
        self, description: str, total: int | None = None, measure: Measure = "rows"
    ) -> AbstractContextManager[Task]:
        """A progress bar for long work while the block runs (nothing drawn without a terminal)."""
        if self.tasks is None:
            return nullcontext(NoTask())
        return self.tasks(description, total, measure)

    def stage(self, title: str) -> None:
        self.echo(f"\n== {title}")

    def bulk_load(self, r: BulkLoadReport) -> None:
        self.echo(f"  {r.table:<34} {r.rows_read:>10,} rows read  {r.rows_stored:>10,} stored  {r.seconds:6.1f}s")

    def extract(self, r: BatchReport) -> None:
        if r.batch_id is None:
            self.echo(f"  {r.table:<34} {'no changed rows':>21}  watermark -> {r.upper}")
            return
        self.echo(
            f"  {r.table:<34} {r.rows:>10,} rows  {mb(r.bytes):>9}  {len(r.parts)} part(s)  "
            f"{r.seconds:6.1f}s  -> {r.manifest}{'  (resumed)' if r.resumed else ''}"
        )

    def load(self, r: BatchLoadReport) -> None:
        for change in r.raw_changes:
            self.echo(f"  schema: {change}")
        if r.status == "loaded":
            self.echo(
                f"  {r.table:<34} batch {r.batch_id}: {r.rows_in_batch:>9,} rows, "
                f"{r.rows_inserted:>9,} new versions  {r.seconds:6.1f}s"
            )

    def dbt(self, r: DbtReport) -> None:
        counts: dict[str, int] = {}
        for _, status, _ in r.results:
            counts[status] = counts.get(status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        self.echo(f"  dbt {r.command}: {summary or 'nothing to do'}")

    def tick(self, message: str) -> None:
        if self.progress:
            self.progress(message)


def console_reporter(
    log_format: LogFormat = "text", echo: Echo = print, tty: bool = False, progress: Callable[[str], None] | None = None
) -> Reporter:
    """The reporter of a command: text lines (with progress bars on a terminal), or JSON lines
    (every report line, and each unit's outcome as it ends) with DWH_LOG_FORMAT=json."""
    if log_format == "json":
        lines = JsonLines(echo)
        rep = Reporter(echo=lines.echo)
        lines.run_id = rep.run.run_id
        rep.run.observers.append(lines.unit)
        return rep
    return Reporter(echo=echo, progress=progress if tty else None, tasks=rich_tasks() if tty else None)
