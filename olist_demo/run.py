"""The demo commands: generate data, simulate the shop, and the whole pipeline from nothing."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

from loaders import pipeline
from loaders.config import Settings
from loaders.report import Reporter, mb
from loaders.sources import open_source

from .funnel_generator import generate_funnel
from .olist_generator import generate_olist
from .shop_simulator import HourReport, simulate_hour


def generate(settings: Settings, out: Path, rep: Reporter) -> dict[str, int]:
    """`dwh generate`: the nine Olist CSV files at `settings.scale` into `out`."""
    rep.stage(f"generate Olist CSV files (scale {settings.scale}, seed {settings.seed}) -> {out}")
    started = time.perf_counter()
    counts = generate_olist(
        out, scale=settings.scale, seed=settings.seed, progress=lambda f, n: rep.tick(f"{f}: {n:,} rows")
    )
    for name, rows in counts.items():
        rep.echo(f"  {name:<44} {rows:>10,} rows")
    rep.echo(f"  done in {time.perf_counter() - started:.1f}s")
    return counts


def funnel_generate(
    settings: Settings,
    rep: Reporter,
    out: Path,
    olist_csv: Path,
    rows_per_file: int | None = None,
    years: tuple[int, ...] = (2016, 2017, 2018),
) -> dict[str, int]:
    """`dwh funnel generate`: funnel files in the vendor's format, one per year."""
    rep.stage(f"generate funnel files (users and products from {olist_csv}) -> {out}")
    counts = generate_funnel(
        out,
        olist_csv,
        scale=settings.scale,
        seed=settings.seed,
        years=years,
        rows_per_file=rows_per_file,
        progress=lambda f, n: rep.tick(f"{f}: {n:,} rows"),
    )
    for name, rows in counts.items():
        size = (out / name).stat().st_size
        rep.echo(f"  {name:<24} {rows:>10,} rows  {mb(size):>9}")
    return counts


def simulate(settings: Settings, rep: Reporter, hours: int = 1, orders_per_hour: int = 20) -> list[HourReport]:
    """`dwh simulate`: apply simulated hours of shop activity to the source."""
    rng = random.Random(settings.seed + int(time.time()))
    out = []
    with open_source(settings.source_url) as engine:
        rep.stage(f"simulate {hours} hour(s) of shop activity in the source ({engine.name})")
        for _ in range(hours):
            r = simulate_hour(engine, rng, orders_per_hour=orders_per_hour)
            rep.echo(
                f"  {r.hour_start:%Y-%m-%d %H:00}: {r.new_orders} new orders ({r.new_items} items), "
                f"{r.approved} approved, {r.shipped} shipped, {r.delivered} delivered, "
                f"{r.canceled} canceled, {r.new_reviews} reviews"
            )
            out.append(r)
    return out


DEMO_FILES = (
    "store",
    "olist.sqlite",
    "olist.sqlite-wal",
    "olist.sqlite-shm",
    "warehouse.duckdb",
    "warehouse.duckdb.wal",
    "csv",
    "funnel",
    "dashboard.html",
)
"""What `dwh demo` replaces in the data folder."""


def delete_a_review(settings: Settings, rep: Reporter) -> tuple:
    """Delete the first order review in the source, as a moderator would; return its key
    (review_id, order_id). A cursor extract cannot see a deleted row: the demo's verify finds it."""
    with open_source(settings.source_url) as engine:
        q, p = engine.quote, engine.paramstyle
        key = tuple(
            engine.execute(f"SELECT {q('review_id')}, {q('order_id')} FROM {q('order_reviews')} ORDER BY 1, 2 LIMIT 1")[
                0
            ]
        )
        engine.execute(f"DELETE FROM {q('order_reviews')} WHERE {q('review_id')} = {p} AND {q('order_id')} = {p}", key)
    rep.echo(f"  deleted in the source: order_reviews {key[0]}/{key[1]} (the next extract cannot see it; verify will)")
    return key


def demo(settings: Settings, rep: Reporter) -> None:
    """The whole pipeline from nothing, on the embedded default, twice (historical, then hourly),
    then a verify-and-repair of every table against the source and the dashboard."""
    data = settings.data_dir
    for leftover in DEMO_FILES:
        path = data / leftover
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    csv_dir = data / "csv"
    generate(settings, csv_dir, rep)
    pipeline.load_source(settings, csv_dir, rep)
    funnel_dir = data / "funnel"
    funnel_generate(settings, rep, funnel_dir, csv_dir, rows_per_file=max(1000, int(400_000 * settings.scale)))
    pipeline.funnel_land(settings, rep, sorted(funnel_dir.glob("*_funnel.csv")))
    pipeline.funnel_convert(settings, rep)
    pipeline.extract(settings, rep, "historical")
    pipeline.load(settings, rep)
    pipeline.build(settings, rep)
    simulate(settings, rep, hours=1, orders_per_hour=max(5, int(400 * settings.scale)))
    delete_a_review(settings, rep)
    pipeline.extract(settings, rep, "current")
    pipeline.load(settings, rep)
    pipeline.build(settings, rep)
    pipeline.verify(settings, rep, repair=True)  # the data diff `dwh run` does daily (DWH_VERIFY_EVERY)
    page = pipeline.dashboard(settings, rep)
    rep.echo(f"\ndemo finished in {time.perf_counter() - rep.started:.0f}s; warehouse: {settings.duckdb_path}")
    rep.echo(f"dashboard: {page}")
