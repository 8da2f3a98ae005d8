"""Tables in parallel: `dwh extract` works on as many tables at once as fit `DWH_MAX_MEMORY_MB`.

Each table is still one unit: one batch, one watermark, written by one thread in its own order,
so exactly-once and the per-table order of batches are what they are sequentially. What changes
is only how many tables run at the same time: a table starts when the estimates of the tables
running plus its own fit the budget (or when nothing runs: a table larger than the budget runs
alone). The estimate is what an extract holds in memory at its peak, from the declaration and the
settings (`memory_estimate_mb`), not from the table's size: the readers keep memory flat
(loaders/extract/readers.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from ..config import Settings
from ..declarations import Table

T = TypeVar("T")
R = TypeVar("R")
BASE_MB = 48.0
"""A running extract's fixed cost: its connections, the Parquet writer, ConnectorX's runtime."""
MAX_WORKERS = 8
TEXT_BYTES = 256  # an unbounded text value, on average at most (Olist's review comments: ~70)


def row_bytes(table: Table) -> int:
    """An upper estimate of one row's size in Arrow memory, from the declared types."""
    total = 0
    for column in table.columns:
        kind, length = column.type.kind, column.type.length
        if kind in ("char", "varchar"):
            total += (length or TEXT_BYTES) + 4
        elif kind == "text":
            total += TEXT_BYTES
        elif kind == "decimal":
            total += 16
        else:
            total += 8
    return total


def memory_estimate_mb(table: Table, mode: str, settings: Settings) -> float:
    """Peak memory of one table's extract, MB. Historical: a page per key range being read, the
    hand-off queue (two batches per range) and the batch being written; current: the streamed
    batch and the one being written. Arrow and the Parquet encoder each hold a copy (x 2)."""
    if mode == "historical":
        rows = settings.extract_streams * settings.page_rows + 2 * settings.extract_streams * settings.batch_rows
        rows += settings.batch_rows
    else:
        rows = 2 * settings.batch_rows
    return BASE_MB + 2 * rows * row_bytes(table) / 1e6


def run_within_budget(
    items: Sequence[T],
    cost: Callable[[T], float],
    budget: float,
    work: Callable[[T], R],
    at_once: int = MAX_WORKERS,
    on_interrupt: Callable[[], None] | None = None,
) -> tuple[list[R], int]:
    """Run `work` on every item on threads, starting items in order while the costs of those
    running fit `budget` and fewer than `at_once` (at most MAX_WORKERS) run; return the results
    in the items' order and the most that ran at once. A budget of 0 or `at_once` 1 runs one
    item at a time (on a worker thread).

    The first item to fail stops new starts; the items already running end, then its exception
    is raised (as a sequential loop would stop at it). An interrupt while waiting (Ctrl-C) calls
    `on_interrupt` first, before waiting for the items running (it can cancel their work).
    """
    results: dict[int, R] = {}
    failures: dict[int, BaseException] = {}
    running: dict[Future, tuple[int, float]] = {}
    lock = threading.Lock()
    most = 0
    at_once = max(1, min(at_once, MAX_WORKERS))
    with ThreadPoolExecutor(max_workers=max(1, min(at_once, len(items))), thread_name_prefix="table") as pool:
        pending = list(enumerate(items))
        try:
            while pending or running:
                while pending and not failures:
                    index, item = pending[0]
                    needed = cost(item)
                    in_use = sum(c for _, c in running.values())
                    if running and in_use + needed > budget or len(running) >= at_once:
                        break
                    pending.pop(0)
                    running[pool.submit(work, item)] = (index, needed)
                    most = max(most, len(running))
                if failures:
                    pending = []
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    index, _ = running.pop(future)
                    error = future.exception()
                    with lock:
                        if error is not None:
                            failures[index] = error
                        else:
                            results[index] = future.result()
        except BaseException:
            if on_interrupt is not None:
                on_interrupt()
            raise
    if failures:
        raise failures[min(failures)]
    return [results[i] for i in sorted(results)], most
