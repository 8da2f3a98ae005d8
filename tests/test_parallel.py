"""Tables in parallel: the same warehouse as one table at a time, within the memory budget."""

from __future__ import annotations

import random
import threading
import time

import pytest

from loaders import pipeline
from loaders.config import Settings
from loaders.declarations import declared_tables
from loaders.extract.parallel import memory_estimate_mb, run_within_budget
from olist_demo.shop_simulator import simulate_hour

from .helpers import extract_and_load, fill_source, raw_snapshot


def test_the_budget_decides_how_many_run_at_once():
    active, most = [0], [0]
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return item * 10

    items = list(range(6))
    assert run_within_budget(items, lambda _: 100.0, 250.0, work) == ([i * 10 for i in items], 2)
    assert most[0] == 2
    # A single item above the budget still runs, alone.
    assert run_within_budget(items, lambda _: 300.0, 250.0, work)[1] == 1


def test_a_failure_stops_new_starts_and_is_raised_after_the_running_ones_end():
    started: list[int] = []

    def work(item: int) -> int:
        started.append(item)
        time.sleep(0.05 if item else 0.2)
        if item == 1:
            raise ValueError("table 1 failed")
        return item

    with pytest.raises(ValueError, match="table 1 failed"):
        run_within_budget(list(range(5)), lambda _: 1.0, 2.0, work)
    assert sorted(started) == [0, 1]  # 0 still ended; nothing started after the failure


def test_at_once_caps_the_items_running_and_an_interrupt_cancels_them_first():
    active, most = [0], [0]
    lock = threading.Lock()
    cancelled = threading.Event()

    def work(item: int) -> int:
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return item

    assert run_within_budget(list(range(6)), lambda _: 1.0, 1000.0, work, at_once=3)[1] == 3
    assert most[0] == 3

    def waits_for_cancel(item: int) -> bool:  # a load running until its statement is cancelled
        return cancelled.wait(timeout=20)

    def cost(item: int) -> float:
        if item == 2:
            raise KeyboardInterrupt  # Ctrl-C while the main thread schedules
        return 1.0

    done: list[bool] = []
    with pytest.raises(KeyboardInterrupt):
        run_within_budget(
            list(range(4)), cost, 1000.0, lambda i: done.append(waits_for_cancel(i)), on_interrupt=cancelled.set
        )
    assert done == [True, True]  # both running items were released by the cancel, not the timeout


def test_estimates_follow_the_settings(settings):
    orders = declared_tables(settings.project_dir)["orders"]
    historical = memory_estimate_mb(orders, "historical", settings)
    assert memory_estimate_mb(orders, "current", settings) < historical
    assert memory_estimate_mb(orders, "historical", settings.with_(page_rows=65_536)) > historical


@pytest.mark.parametrize("engine", ["mysql", "sqlite"])
def test_parallel_tables_make_the_same_warehouse_as_sequential(
    engine, settings, olist_csv, tmp_path, monkeypatch, request
):
    """MariaDB sources read several tables at once; SQLite sources one at a time by design
    (SQLiteSource.parallel_tables: two copies of SQLite in one process and a WAL database)."""
    if engine == "mysql":
        settings = settings.with_(source_url=request.getfixturevalue("mysql_url"))
    tables = list(declared_tables(settings.project_dir))
    fill_source(settings, olist_csv)
    one_at_a_time = settings.with_(
        max_memory_mb=1, store_url=str(tmp_path / "seq-store"), duckdb_path=str(tmp_path / "seq.duckdb")
    )
    parallel = settings.with_(max_memory_mb=4096)
    original = pipeline.extract_table
    active, most = [0], [0]
    lock = threading.Lock()

    def counting(*args, **kwargs):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            time.sleep(0.02)
            return original(*args, **kwargs)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(pipeline, "extract_table", counting)
    rng = random.Random(18)
    for round_ in range(3):  # historical, then two simulated hours
        if round_:
            from loaders.sources import open_source

            with open_source(settings.source_url) as db:
                simulate_hour(db, rng, orders_per_hour=30)
        most[0] = 0
        extract_and_load(one_at_a_time, "auto", tables)
        assert most[0] == 1
        batches, _ = extract_and_load(parallel, "auto", tables)
        assert most[0] > 1 if engine == "mysql" else most[0] == 1
        assert [b.table for b in batches] == tables  # reports in table order
        assert raw_snapshot(parallel, tables) == raw_snapshot(one_at_a_time, tables)
    counts = {t: len(rows) for t, rows in raw_snapshot(parallel, tables).items()}
    assert counts["orders"] > 0 and counts["order_items"] > 0


def test_the_budget_is_a_setting(settings):
    from loaders.config import ConfigError

    with pytest.raises(ConfigError, match="DWH_MAX_MEMORY_MB=0"):
        Settings(data_dir=settings.data_dir, max_memory_mb=0)
    assert Settings.from_env({"DWH_MAX_MEMORY_MB": "300"}).max_memory_mb == 300
