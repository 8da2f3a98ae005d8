"""`dwh dashboard`: the BI views and the pipeline's health as one static HTML page.

Where QuickSight is absent (a laptop, a small shop on PostgreSQL) the same six BI views become
Plotly charts: sales by category and year, monthly revenue and orders, delivery performance by
state, the seller scorecard, funnel conversion by category and month, funnel customer activity.
A pipeline-health panel reads the run history (loaders/history.py): how far each table's data
lags, rows per run, and the units that failed or never finished.

The page is one file with plotly.js inlined: it opens offline, from a file, with no server and
no request anywhere. The warehouse is opened read-only and closed before the page is written:
the dashboard never holds the DuckDB lock a load needs. Every query below is plain SQL that
DuckDB, PostgreSQL and Redshift run alike (tests/test_dashboard.py renders them for Redshift and
parses them with SQLFluff's redshift dialect).
"""

from __future__ import annotations

import html
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from string import Template
from typing import Any

from .config import Settings
from .history import HISTORY, UNFINISHED_AFTER
from .runs import utcnow
from .store import ObjectStore
from .warehouses import LOAD_LOG, Warehouse, open_warehouse, quote, timestamp

log = logging.getLogger("loaders.dashboard")

BI_SCHEMA = "bi"  # models/bi/ builds into schema bi on every warehouse (macros/generate_schema_name.sql)
TOP_CATEGORIES = 12
TOP_SELLERS = 300
RUNS_SHOWN = 48
FAILURES_SHOWN = 30

QUERIES: dict[str, str] = {
    "sales_by_category_year": """
select
    category_name_english,
    year_number,
    units_sold,
    revenue
from ${bi}.bi_sales_by_category_year
order by year_number, category_name_english
""",
    "monthly_revenue": """
select
    month_start_date,
    order_count,
    revenue
from ${bi}.bi_monthly_revenue
order by month_start_date
""",
    "delivery_by_state": """
select
    customer_state,
    delivered_order_count,
    average_delivery_days,
    late_order_share
from ${bi}.bi_delivery_performance_by_state
order by average_delivery_days desc
""",
    "seller_scorecard": """
select
    seller_id,
    seller_state,
    order_count,
    revenue,
    average_review_score,
    late_order_count
from ${bi}.bi_seller_scorecard
where average_review_score is not null
order by revenue desc, seller_id
limit ${top_sellers}
""",
    "funnel_conversion": """
select
    product_category_name_english,
    event_month_number,
    view_count,
    purchase_count,
    view_to_purchase_rate
from ${bi}.bi_funnel_conversion_by_category_month
order by event_month_number, product_category_name_english
""",
    "funnel_activity": """
select
    count(*) as customer_count,
    sum(case when is_viewer_without_purchase then 1 else 0 end) as viewers_without_purchase,
    sum(case when is_carter_without_purchase then 1 else 0 end) as carters_without_purchase,
    sum(case when purchase_count > 0 then 1 else 0 end) as buyers,
    sum(case when is_known_customer then 0 else 1 end) as unknown_users
from ${bi}.bi_funnel_customer_activity
""",
    "lag_by_table": """
select
    h.unit_name as table_name,
    max(h.started_at) as current_through
from ${raw}.${history} as h
left join ${raw}.${load_log} as l on h.batch_ids = l.batch_id
where
    h.stage = 'extract'
    and h.status = 'succeeded'
    and (h.batch_ids = '' or l.batch_id is not null)
group by h.unit_name
order by h.unit_name
""",
    "rows_per_run": """
select
    run_id,
    stage,
    min(started_at) as run_started_at,
    sum(row_count) as row_count
from ${raw}.${history}
where stage in ('extract', 'load', 'funnel_convert')
group by run_id, stage
order by run_started_at desc, stage
limit ${runs_shown}
""",
    "failures": """
select
    started_at,
    stage,
    unit_name,
    status,
    error_message
from ${raw}.${history}
where
    status in ('failed', 'set_aside')
    or (status = 'running' and started_at < ${unfinished_before})
order by started_at desc
limit ${failures_shown}
""",
}
"""Every query the page runs, as templates: ${bi} and ${raw} are the quoted schemas."""
HEALTH_QUERIES = ("lag_by_table", "rows_per_run", "failures")


def render_queries(raw_schema: str, now: datetime) -> dict[str, str]:
    """The queries as the warehouse receives them (the same text for every engine)."""
    values = {
        "bi": quote(BI_SCHEMA),
        "raw": quote(raw_schema),
        "history": quote(HISTORY),
        "load_log": quote(LOAD_LOG),
        "top_sellers": str(TOP_SELLERS),
        "runs_shown": str(RUNS_SHOWN),
        "failures_shown": str(FAILURES_SHOWN),
        "unfinished_before": timestamp(now - UNFINISHED_AFTER),
    }
    return {name: Template(sql).substitute(values).strip() + "\n" for name, sql in QUERIES.items()}


@dataclass
class DashboardData:
    generated_at: datetime
    warehouse: str
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # queries whose view or table does not exist yet


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def fetch(settings: Settings, now: datetime | None = None) -> DashboardData:
    """Run every query with the warehouse opened read-only; close it before returning."""
    now = now or utcnow()
    data = DashboardData(now, settings.warehouse)
    store = ObjectStore(settings.store_url, settings)
    with open_warehouse(settings, store, read_only=True) as wh:
        for name, sql in render_queries(settings.raw_schema, now).items():
            try:
                rows = _query(wh, sql)
            except Exception as exc:  # a view not built yet, a history not written yet
                log.info("dashboard query %s failed: %s", name, exc)
                wh.rollback()
                data.missing.append(name)
                continue
            data.rows[name] = [{k: _plain(v) for k, v in row.items()} for row in rows]
    return data


def _query(wh: Warehouse, sql: str) -> list[dict[str, Any]]:
    cur = wh.conn.cursor()
    try:
        cur.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        cur.close()


# -- charts ------------------------------------------------------------------------------------
def _figures(data: DashboardData) -> list[tuple[str, str, Any]]:
    """(div id, title, figure) for every chart, BI views first, then pipeline health."""
    import plotly.graph_objects as go
    from plotly.colors import sample_colorscale
    from plotly.subplots import make_subplots

    rows, out = data.rows, []
    legend = dict(orientation="h", x=0, y=1.02, yanchor="bottom")  # above the plot, clear of the axis titles
    layout = dict(margin=dict(l=60, r=20, t=40, b=50), template="plotly_white", legend=legend)

    sales = rows.get("sales_by_category_year") or []
    totals: dict[str, float] = defaultdict(float)
    for r in sales:
        totals[r["category_name_english"]] += r["revenue"] or 0
    top = sorted(totals, key=lambda c: totals[c])[-TOP_CATEGORIES:]  # the largest at the top
    fig = go.Figure()
    for year in sorted({r["year_number"] for r in sales}):
        by_category = {r["category_name_english"]: r["revenue"] for r in sales if r["year_number"] == year}
        fig.add_bar(name=str(year), y=top, x=[by_category.get(c, 0) for c in top], orientation="h")
    fig.update_layout(barmode="stack", xaxis_title="revenue (BRL)", **layout)
    out.append(("sales-by-category-year", f"Sales by category and year (top {TOP_CATEGORIES} categories)", fig))

    monthly = rows.get("monthly_revenue") or []
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(name="revenue (BRL)", x=[r["month_start_date"] for r in monthly], y=[r["revenue"] for r in monthly])
    fig.add_scatter(
        name="orders",
        x=[r["month_start_date"] for r in monthly],
        y=[r["order_count"] for r in monthly],
        mode="lines+markers",
        secondary_y=True,
    )
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(**layout)
    out.append(("monthly-revenue", "Monthly revenue and orders", fig))

    states = rows.get("delivery_by_state") or []
    fig = go.Figure(
        go.Bar(
            x=[r["customer_state"] for r in states],
            y=[r["average_delivery_days"] for r in states],
            # colours computed here: plotly.js warns about numeric bar colours in the browser console
            marker=dict(color=sample_colorscale("Reds", [min(1.0, 2 * (r["late_order_share"] or 0)) for r in states])),
            customdata=[[r["delivered_order_count"], r["late_order_share"]] for r in states],
            hovertemplate="%{x}: %{y:.1f} days, %{customdata[0]} orders, %{customdata[1]:.0%} late<extra></extra>",
        )
    )
    fig.update_layout(yaxis_title="average days to deliver", **layout)
    out.append(("delivery-by-state", "Delivery performance by customer state (darker: more late orders)", fig))

    sellers = rows.get("seller_scorecard") or []
    fig = go.Figure(
        go.Scatter(
            x=[r["revenue"] for r in sellers],
            y=[r["average_review_score"] for r in sellers],
            mode="markers",
            marker=dict(size=[6 + 2 * min(r["order_count"], 20) for r in sellers], opacity=0.6),
            text=[f"{r['seller_id'][:8]}… ({r['seller_state']}), {r['late_order_count']} late" for r in sellers],
        )
    )
    fig.update_layout(xaxis_title="revenue (BRL)", yaxis_title="average review score", **layout)
    out.append(("seller-scorecard", f"Seller scorecard (top {TOP_SELLERS} sellers by revenue; size: orders)", fig))

    conversion = rows.get("funnel_conversion") or []
    views: dict[str, int] = defaultdict(int)
    for r in conversion:
        views[r["product_category_name_english"]] += r["view_count"] or 0
    categories = sorted(views, key=lambda c: -views[c])[:TOP_CATEGORIES]
    months = sorted({r["event_month_number"] for r in conversion})
    rate = {
        (r["product_category_name_english"], r["event_month_number"]): r["view_to_purchase_rate"] for r in conversion
    }
    fig = go.Figure(
        go.Heatmap(
            x=[f"{m // 100}-{m % 100:02d}" for m in months],
            y=categories,
            z=[[rate.get((c, m)) for m in months] for c in categories],
            colorscale="Viridis",
            colorbar=dict(title="purchases / views"),
        )
    )
    fig.update_layout(**layout)
    out.append(("funnel-conversion", "Funnel: view-to-purchase rate by category and month", fig))

    activity = (rows.get("funnel_activity") or [{}])[0]
    segments = {
        "viewed, never bought": activity.get("viewers_without_purchase"),
        "carted, never bought": activity.get("carters_without_purchase"),
        "bought": activity.get("buyers"),
        "not a shop customer": activity.get("unknown_users"),
    }
    fig = go.Figure(go.Bar(x=list(segments), y=[v or 0 for v in segments.values()]))
    fig.update_layout(yaxis_title=f"users (of {activity.get('customer_count') or 0})", **layout)
    out.append(("funnel-activity", "Funnel: customer activity", fig))

    lag = rows.get("lag_by_table") or []
    hours = [(data.generated_at - r["current_through"]).total_seconds() / 3600 for r in lag]
    fig = go.Figure(go.Bar(y=[r["table_name"] for r in lag], x=hours, orientation="h"))
    fig.update_layout(xaxis_title="hours since the start of the last extract whose data is loaded", **layout)
    out.append(("health-lag", "Pipeline: lag per table", fig))

    runs = rows.get("rows_per_run") or []
    first: dict[str, datetime] = {}
    for r in runs:
        first[r["run_id"]] = min(first.get(r["run_id"], r["run_started_at"]), r["run_started_at"])
    order = sorted(first, key=lambda run: first[run])
    label = {run: f"{first[run]:%m-%d %H:%M} {run[-6:]}" for run in order}
    fig = go.Figure()
    for stage in sorted({r["stage"] for r in runs}):
        count = {r["run_id"]: r["row_count"] for r in runs if r["stage"] == stage}
        fig.add_bar(name=stage, x=[label[run] for run in order], y=[count.get(run, 0) for run in order])
    fig.update_layout(barmode="group", yaxis_title="rows", xaxis=dict(type="category"), **layout)
    out.append(("health-rows", "Pipeline: rows per run", fig))

    failures = rows.get("failures") or []
    if failures:
        columns = [
            [f"{r['started_at']:%Y-%m-%d %H:%M}" for r in failures],
            [r["stage"] for r in failures],
            [r["unit_name"] for r in failures],
            [r["status"] if r["status"] != "running" else "unfinished" for r in failures],
            [r["error_message"] or "never ended (killed?)" for r in failures],
        ]
    else:
        columns = [["-"], ["-"], ["-"], ["none"], [f"no failed or unfinished unit in the last {FAILURES_SHOWN}"]]
    fig = go.Figure(
        go.Table(
            columnwidth=[14, 10, 16, 10, 50],
            header=dict(values=["started (UTC)", "stage", "unit", "status", "error"], align="left"),
            cells=dict(values=columns, align="left"),
        )
    )
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=10))
    out.append(("health-failures", "Pipeline: failures and unfinished units", fig))
    return out


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>olist-dwh dashboard</title>
<style>
html { overflow-y: scroll; }  /* the width charts are drawn at does not change when the page grows */
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
h1 { font-size: 1.4rem; margin: 0 0 .2rem; } h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
p.meta { color: #666; margin: 0 0 1rem; font-size: .9rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 1rem; }
.card { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: .6rem .8rem; min-width: 0; }
.card.wide { grid-column: 1 / -1; }
.card h3 { font-size: .95rem; margin: 0 0 .3rem; font-weight: 600; }
.missing { color: #a33; }
</style>
<script>$plotlyjs</script>
</head>
<body>
<h1>olist-dwh</h1>
<p class="meta">Generated $generated UTC from the $warehouse warehouse by <code>dwh dashboard</code>. $missing</p>
<h2>Business</h2>
<div class="grid">$business</div>
<h2>Pipeline health</h2>
<div class="grid">$health</div>
</body>
</html>
"""


def render(data: DashboardData) -> str:
    """The page: plotly.js once, inline, then one card per chart."""
    from plotly.offline import get_plotlyjs

    cards: dict[str, list[str]] = {"business": [], "health": []}
    for div_id, title, fig in _figures(data):
        chart = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=div_id,
            default_height="200px" if div_id == "health-failures" else "380px",
            default_width="100%",
            config={"responsive": True, "displaylogo": False},
        )
        section = "health" if div_id.startswith("health-") else "business"
        wide = " wide" if div_id == "health-failures" else ""
        cards[section].append(f'<div class="card{wide}"><h3>{html.escape(title)}</h3>{chart}</div>')
    missing = (
        f'<span class="missing">Not built yet: {html.escape(", ".join(data.missing))}.</span>' if data.missing else ""
    )
    return Template(PAGE).substitute(
        plotlyjs=get_plotlyjs(),
        generated=f"{data.generated_at:%Y-%m-%d %H:%M}",
        warehouse=html.escape(data.warehouse),
        missing=missing,
        business="\n".join(cards["business"]),
        health="\n".join(cards["health"]),
    )


def default_path(settings: Settings) -> Path:
    """Beside the data: `data/dashboard.html` (the docs site links to it from there)."""
    return settings.data_dir / "dashboard.html"


def write_dashboard(settings: Settings, out: Path | None = None, now: datetime | None = None) -> Path:
    """Query the warehouse (read-only, closed again), write the page, return its path."""
    data = fetch(settings, now)
    path = Path(out or default_path(settings))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(data), encoding="utf-8")
    tmp.replace(path)
    return path
