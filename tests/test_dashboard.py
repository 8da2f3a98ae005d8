"""`dwh dashboard` and the dbt docs site, checked in a real browser (Debian's Chromium, headless,
no network): every chart drawn with data, no failed or external request, no JavaScript error.
Screenshots go to bench/results/browser/ (git-ignored), the CI artifact."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlfluff

from loaders import pipeline
from loaders.config import PROJECT_DIR, Settings
from loaders.dashboard import HEALTH_QUERIES, QUERIES, render_queries
from loaders.history import create_statements, upsert_statements
from loaders.runs import UnitOutcome
from loaders.store import ObjectStore
from loaders.warehouses import RedshiftWarehouse

from .conftest import IN_CI, TEST_SCALE, _unavailable
from .helpers import extract_and_load, fill_source, quiet

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # root in CI
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = PROJECT_DIR / "bench" / "results" / "browser"
CHARTS = {
    "sales-by-category-year",
    "monthly-revenue",
    "delivery-by-state",
    "seller-scorecard",
    "funnel-conversion",
    "funnel-activity",
    "health-lag",
    "health-rows",
    "health-failures",
}


def test_every_dashboard_and_run_history_statement_parses_as_redshift(settings):
    """The same SQL runs on every warehouse; Redshift cannot run here, so its dialect parses it."""
    wh = RedshiftWarehouse(settings.with_(warehouse="redshift"), ObjectStore(settings.store_url, settings))
    now = datetime(2026, 11, 30, 4, 0)
    outcome = UnitOutcome("20261130T040000000000Z-abc123", "load", "orders", now, now, "failed", 3, 0, ["b1"], "x'y")
    statements = [
        *render_queries("raw", now).values(),
        *create_statements(wh),
        *upsert_statements(wh, outcome, now),
    ]
    assert len(statements) == len(QUERIES) + 4
    for sql in statements:
        sqlfluff.parse(sql, dialect="redshift")  # raises APIParsingError on anything the dialect rejects
    assert '"raw"."_run_history"' in render_queries("raw", now)["failures"]  # raw is reserved on Redshift


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, olist_csv: Path) -> Iterator[Settings]:
    """A warehouse built from nothing, with funnel files, its docs site and its dashboard."""
    from olist_demo.funnel_generator import generate_funnel

    s = Settings(data_dir=tmp_path_factory.mktemp("dashboard") / "data")
    fill_source(s, olist_csv)
    funnel = tmp_path_factory.mktemp("funnel")
    generate_funnel(funnel, olist_csv, scale=TEST_SCALE * 10, seed=3, years=(2017, 2018))
    pipeline.funnel_land(s, quiet(), sorted(funnel.glob("*.csv")))
    pipeline.funnel_convert(s, quiet())
    extract_and_load(s)
    pipeline.build(s, quiet(), check_freshness=False)
    pipeline.docs(s, quiet())
    pipeline.dashboard(s, quiet())
    yield s


@pytest.mark.slow
def test_the_page_holds_every_chart_with_its_data_and_no_outside_reference(built):
    from loaders.dashboard import default_path, fetch

    page = default_path(built)
    text = page.read_text(encoding="utf-8")
    assert set(re.findall(r'<div id="([a-z-]+)" class="plotly-graph-div"', text)) == CHARTS
    head, _, rest = text.partition("<script>")
    library, _, body = rest.partition("</script>")  # plotly.js, inline
    assert len(library) > 1_000_000 and "Plotly" in library
    page_markup = head + body
    assert "<script src" not in page_markup and not re.search(r'(src|href)="(https?:)?//', page_markup)
    data = fetch(built)
    assert data.missing == [] and all(data.rows[name] for name in QUERIES if name != "failures")
    assert set(HEALTH_QUERIES) <= set(data.rows)
    import duckdb

    with duckdb.connect(built.duckdb_path) as con:  # the dashboard closed the warehouse: a writer can open it
        con.execute("SELECT 1")


def _browser():
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium (make test does it as root)")
    from playwright.sync_api import sync_playwright

    return sync_playwright()


def _open(playwright, url: str, screenshot: Path, after_load=None) -> dict:
    """Open `url` with every non-file request blocked; return what the page did."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, service_workers="block")
        seen: dict[str, Any] = {"requests": [], "failed": [], "errors": [], "console": [], "blocked": []}

        def route(r):
            if r.request.url.startswith(("file:", "data:", "blob:")):
                r.continue_()
            else:  # no network: anything else is an external request, and a failure
                seen["blocked"].append(r.request.url)
                r.abort("blockedbyclient")

        context.route("**/*", route)
        page = context.new_page()
        page.on("request", lambda r: seen["requests"].append(r.url))
        page.on("requestfailed", lambda r: seen["failed"].append(f"{r.url}: {r.failure}"))
        page.on("pageerror", lambda e: seen["errors"].append(str(e)))
        page.on(
            "console",
            lambda m: seen["console"].append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None,
        )
        page.goto(url, wait_until="load")
        seen["result"] = after_load(page) if after_load else None
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        return seen
    finally:
        browser.close()


def _check_clean(seen: dict) -> None:
    external = [u for u in seen["requests"] if not u.startswith(("file:", "data:", "blob:"))]
    assert external == [] and seen["blocked"] == []
    assert seen["failed"] == []
    assert seen["errors"] == [] and seen["console"] == []


CHART_DATA = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
    id: gd.id,
    traces: gd.data.length,
    points: gd.data.map(t => (t.cells ? t.cells.values[0] : (t.z || t.y || t.x || [])).length),
    drawn: gd.querySelectorAll('.main-svg').length,
}))"""


@pytest.mark.slow
def test_the_dashboard_renders_every_chart_with_data_in_chromium(built):
    from loaders.dashboard import default_path

    with _browser() as playwright:
        seen = _open(
            playwright,
            default_path(built).as_uri(),
            SCREENSHOTS / "dashboard.png",
            lambda page: (
                page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 9"),
                page.evaluate(CHART_DATA),
            )[1],  # fmt: skip
        )
    _check_clean(seen)
    assert seen["requests"] == [default_path(built).as_uri()]  # one file, nothing else
    charts = {c["id"]: c for c in seen["result"]}
    assert set(charts) == CHARTS
    for chart in charts.values():  # each drawn (an SVG), each with data points
        assert chart["drawn"] >= 1 and chart["traces"] >= 1 and min(chart["points"]) >= 1, chart
    assert (SCREENSHOTS / "dashboard.png").stat().st_size > 10_000


@pytest.mark.slow
def test_the_docs_site_renders_offline_and_links_the_dashboard_in_chromium(built):
    page_path = built.data_dir / "dbt" / "target" / "static_index.html"

    def explore(page):
        page.wait_for_selector("text=bi_monthly_revenue", state="attached", timeout=30_000)  # the project tree
        page.goto(page_path.as_uri() + "#!/exposure/exposure.olist_dwh.pipeline_dashboard")
        page.wait_for_selector("h1:has-text('Sales, funnel and pipeline health')", timeout=30_000)
        links = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")
        page.goto(page_path.as_uri() + "#!/source/source.olist_dwh.pipeline._run_history")
        page.wait_for_selector("h1:has-text('pipeline._run_history')", timeout=30_000)
        page.wait_for_selector("text=unit_seq", timeout=30_000)  # its columns, described
        return links

    with _browser() as playwright:
        seen = _open(playwright, page_path.as_uri(), SCREENSHOTS / "docs.png", explore)
    _check_clean(seen)
    assert "../../dashboard.html" in seen["result"]  # the exposure links the page dwh dashboard wrote
    assert (page_path.parent / "../../dashboard.html").resolve() == (built.data_dir / "dashboard.html").resolve()


def test_the_browser_test_cannot_be_skipped_in_ci():
    """CI installs Chromium (.ci/run, make test): without it the browser tests fail there."""
    if IN_CI:
        assert Path(CHROMIUM).exists(), "CI=true: Chromium must be installed"
