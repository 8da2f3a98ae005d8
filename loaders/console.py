"""What a command shows while it runs (contract 7): progress bars on a terminal, one line per
unit in cron and Glue, JSON lines for CloudWatch Logs Insights.

* On a terminal (stderr is a TTY), long work (a historical extract, a funnel file's conversion,
  the source's bulk load, a verify) shows a transient progress bar with rows or bytes and a rate
  (rich). Without a TTY nothing of it is printed: the output stays the one summary line per unit.
* `DWH_LOG_FORMAT=json` turns every line into one JSON object: the report lines (stdout, with
  the run id), each unit's outcome as it ends (stdout, `"event": "unit"` with stage, unit,
  status, rows, bytes, seconds, batch ids, error) and every log record (stderr), through
  python-json-logger. No progress bar is drawn in this mode.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import IO, Any, Literal, Protocol

from .config import LogFormat
from .runs import UnitOutcome

Measure = Literal["rows", "bytes"]
"""What a progress bar counts."""


class Task(Protocol):
    """One piece of long work on a progress bar."""

    def update(self, completed: int) -> None: ...

    def advance(self, amount: int) -> None: ...


class NoTask:
    """The progress of work nobody watches: nothing is drawn."""

    def update(self, completed: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


TaskFactory = Callable[[str, "int | None", Measure], AbstractContextManager[Task]]
"""(description, total or None when unknown, what is counted) -> a progress bar while open."""


class _RichTask:
    def __init__(self, progress: Any, task_id: Any, total: int | None):
        self.progress, self.task_id, self.total = progress, task_id, total
        self.completed = 0

    def update(self, completed: int) -> None:
        self.completed = completed
        if self.total is not None and completed > self.total:  # the total was an estimate
            self.total = completed
            self.progress.update(self.task_id, total=completed)
        self.progress.update(self.task_id, completed=completed)

    def advance(self, amount: int) -> None:
        self.update(self.completed + amount)


@functools.cache
def _terminal() -> IO[str]:
    """The terminal behind stderr on a file descriptor of its own: the bars stay visible while
    the extract keeps a driver's panic output off fd 2 (loaders/extract/diagnose.py)."""
    try:
        return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8", closefd=True)
    except (OSError, ValueError, AttributeError):  # no file descriptor (a test's stream)
        return sys.stderr


def rich_tasks(stream: IO[str] | None = None) -> TaskFactory:
    """Progress bars drawn by rich on `stream` (stderr), removed when their work ends. The
    terminal's descriptor is duplicated now, before any stage sends fd 2 elsewhere
    (loaders/extract/diagnose.py, panics_silenced), so the bars stay on the screen."""
    out = stream or _terminal()

    @contextmanager
    def task(description: str, total: int | None, measure: Measure) -> Iterator[Task]:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.text import Text

        class RowsColumn(ProgressColumn):
            def render(self, task: Any) -> Text:
                total = f"/{int(task.total):,}" if task.total is not None else ""
                return Text(f"{int(task.completed):,}{total} rows")

        class RowRateColumn(ProgressColumn):
            def render(self, task: Any) -> Text:
                speed = task.finished_speed or task.speed
                return Text(f"{speed:,.0f} rows/s" if speed is not None else "? rows/s")

        amount, rate = (
            (DownloadColumn(), TransferSpeedColumn()) if measure == "bytes" else (RowsColumn(), RowRateColumn())
        )
        console = Console(file=out)
        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), amount, rate, TimeElapsedColumn()]
        if total is not None:
            columns.append(TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True, redirect_stdout=False) as progress:
            task_id = progress.add_task(description, total=total)
            yield _RichTask(progress, task_id, total)

    return task


# -- JSON lines -------------------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _print(line: str) -> None:
    print(line, flush=True)


class JsonLines:
    """Report lines and unit outcomes as JSON objects, one per line, through `write` (stdout)."""

    def __init__(self, write: Callable[[str], None] = _print, run_id: str | None = None):
        self.write = write
        self.run_id = run_id

    def _write(self, doc: dict[str, Any]) -> None:
        self.write(json.dumps(doc, default=str))

    def echo(self, line: str) -> None:
        """A report line: its text without the layout's indentation and blank lines."""
        text = line.strip()
        if text:
            self._write({"time": _now(), "level": "INFO", "logger": "dwh", "message": text, "run_id": self.run_id})

    def unit(self, o: UnitOutcome) -> None:
        """A unit's outcome when it ends (a Run observer)."""
        if o.status == "running":
            return
        self._write(
            {
                "time": _now(),
                "level": "ERROR" if o.status in ("failed", "set_aside") else "INFO",
                "logger": "dwh",
                "message": f"{o.stage} {o.unit}: {o.status}",
                "event": "unit",
                "run_id": o.run_id,
                "stage": o.stage,
                "unit": o.unit,
                "status": o.status,
                "rows": o.rows,
                "bytes": o.bytes,
                "seconds": round(o.seconds, 3),
                "batch_ids": o.batch_ids,
                "error": o.error,
            }
        )


def configure_logging(log_format: LogFormat, debug: bool = False) -> None:
    """The root logger: plain `LEVEL name: message` lines, or JSON objects, on stderr."""
    level = logging.DEBUG if debug else logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler._dwh = True  # type: ignore[attr-defined]  # marks the handler this function owns
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_dwh", False) or isinstance(old, logging.StreamHandler) and old.stream is sys.stderr:
            root.removeHandler(old)  # ours from an earlier call, or a plain stderr handler (basicConfig)
    root.addHandler(handler)
    root.setLevel(level)
