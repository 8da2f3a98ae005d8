"""A run and the outcome of each unit of work in it (contracts 13 and 14).

A run is one invocation of a `dwh` command or a Glue job; its units are what one failure may
cost: a table's extract, a batch's load, a funnel file's conversion, a dbt build. Every stage
wraps each unit in `Run.unit(...)`, which times it and records its outcome (status, rows,
bytes, batch ids, the error's first line). Observers see each outcome as it starts and ends:
the run history (issue 16) persists them; the run's summary and exit status come from them.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, get_args

Stage = Literal["source_load", "extract", "load", "build", "funnel_convert", "verify", "schema"]
"""The stages a run's units belong to. `schema`: one unit per source schema change an extract
found (unit `<table>.<column>`, its line as the message; failed when it stopped the table)."""
STAGES: tuple[Stage, ...] = get_args(Stage)
Status = Literal["running", "succeeded", "skipped", "failed", "set_aside"]
"""`running` until the unit ends; `set_aside`: failed and recorded to be retried by a later run."""
STATUSES: tuple[Status, ...] = get_args(Status)


def utcnow() -> datetime:
    """Naive UTC, as every timestamp the loaders write."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id() -> str:
    """Sortable by start time, unique across concurrent runs: `20261130T031500123456Z-a1b2c3`."""
    return utcnow().strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def first_line(exc: BaseException) -> str:
    """An exception as one line: its message's first line, or its type's name. A first line that
    only announces what follows (ends with ':', as `dbt build ... failed:` then one line per
    failed node) takes the next line with it and counts the rest, so the reason is never lost."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    head = lines[0]
    if head.endswith(":") and len(lines) > 1:
        more = len(lines) - 2
        head = f"{head} {lines[1]}" + (f" (and {more} more)" if more else "")
    return head


@dataclass
class UnitOutcome:
    """What one unit of a run did. `rows`/`bytes` are what the unit moved (read or written)."""

    run_id: str
    stage: Stage
    unit: str  # a declared table, a funnel file, a batch id or "dbt build"
    started_at: datetime
    finished_at: datetime | None = None
    status: Status = "running"
    rows: int = 0
    bytes: int = 0
    batch_ids: list[str] = field(default_factory=list)
    error: str | None = None
    seq: int = 0  # the unit's position in its run: (run_id, seq) names one unit

    @property
    def seconds(self) -> float:
        return ((self.finished_at or utcnow()) - self.started_at).total_seconds()


Observer = Callable[[UnitOutcome], None]


@dataclass
class Run:
    """One run: its id and the outcome of every unit, in the order they started."""

    run_id: str = field(default_factory=new_run_id)
    outcomes: list[UnitOutcome] = field(default_factory=list)
    observers: list[Observer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @contextmanager
    def unit(self, stage: Stage, name: str) -> Iterator[UnitOutcome]:
        """Time one unit and record its outcome; the work fills in rows, bytes and batch ids.

        An exception marks the unit failed (its first line is the error) and propagates: the
        caller decides whether the run goes on. A unit may set its own final status (for
        example `skipped`) before it ends.
        """
        with self._lock:  # units of several tables may start at once (loaders/extract/parallel.py)
            outcome = UnitOutcome(self.run_id, stage, name, utcnow(), seq=len(self.outcomes))
            self.outcomes.append(outcome)
        self._notify(outcome)
        try:
            yield outcome
        except BaseException as exc:
            outcome.status = "failed" if outcome.status == "running" else outcome.status
            outcome.error = outcome.error or first_line(exc)
            outcome.finished_at = utcnow()
            self._notify(outcome)
            raise
        if outcome.status == "running":
            outcome.status = "succeeded"
        outcome.finished_at = utcnow()
        self._notify(outcome)

    def _notify(self, outcome: UnitOutcome) -> None:
        for observe in self.observers:
            observe(outcome)

    @property
    def failures(self) -> list[UnitOutcome]:
        """Units that failed or were set aside, in order."""
        return [o for o in self.outcomes if o.status in ("failed", "set_aside")]

    def check(self, since: int = 0, reports: list | None = None) -> None:
        """Raise RunFailed naming every unit that failed or was set aside among the outcomes
        from position `since` on (a stage passes the count it started with); `reports`, what
        the stage did all the same, travel with it."""
        failed = [o for o in self.outcomes[since:] if o.status in ("failed", "set_aside")]
        if failed:
            raise RunFailed(failed, reports=reports)


class RunFailed(RuntimeError):
    """Some units of a run failed or were set aside; the others went on (contract 13).

    The message is one line naming each failed unit (stage, unit, what happened, the error's
    first line); `failures` holds the outcomes. The CLI prints it and exits with status 1.
    """

    def __init__(self, failures: list[UnitOutcome], extra: list[str] | None = None, reports: list | None = None):
        self.failures = list(failures)
        self.extra = list(extra or [])
        self.reports = list(reports or [])  # what the stage did for its other units
        parts = [
            f"{o.stage} {o.unit} {'set aside' if o.status == 'set_aside' else 'failed'}: {o.error or '?'}"
            for o in self.failures
        ] + self.extra
        super().__init__(f"{len(parts)} unit(s) failed: " + "; ".join(parts))
