"""What each stage prints (docs/architecture.md, contract 7): rows, bytes, time, where the output went."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .build import DbtReport
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
    """Prints what each stage did; `progress` receives transient progress messages (a TTY).

    `run` collects the outcome of every unit of work of this invocation (loaders/runs.py).
    """

    echo: Echo = print
    progress: Callable[[str], None] | None = None
    started: float = field(default_factory=time.perf_counter)
    run: Run = field(default_factory=Run)

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
            f"{r.seconds:6.1f}s  -> {r.manifest}"
        )

    def load(self, r: BatchLoadReport) -> None:
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
