"""The freshness metric the load job publishes for the CloudWatch alarm (infra/template.yaml).

After every load (whether it loaded anything or failed), the load job publishes
`MinutesSinceNewestBatch`: minutes between now and the newest `loaded_at` in `raw._load_log`,
in the namespace `DWH_METRICS_NAMESPACE` (the template passes `olist-dwh/<stack name>`; empty: no
metric). A live shop changes every hour, so this stays under an hour or two while the pipeline
works. The alarm fires when it passes the stack's threshold, or when no load job published it at
all for two hours (missing data counts as breaching: a stuck extract starts no load).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from ..config import Settings
from ..runs import utcnow
from ..warehouses import LOAD_LOG, Warehouse
from .clients import client as aws_client

log = logging.getLogger("loaders.aws.metrics")

FRESHNESS_METRIC = "MinutesSinceNewestBatch"


def newest_batch(wh: Warehouse) -> datetime | None:
    """When the newest batch was loaded (UTC), or None before the first load."""
    if not wh.has_table(LOAD_LOG):
        return None
    rows = wh.execute(f"SELECT max(loaded_at) FROM {wh.raw_name(LOAD_LOG)}")
    return rows[0][0] if rows and rows[0][0] is not None else None


def minutes_since(moment: datetime | None, now: datetime | None = None) -> float | None:
    if moment is None:
        return None
    return max(0.0, ((now or utcnow()) - moment).total_seconds() / 60)


def publish_freshness(settings: Settings, wh: Warehouse, cloudwatch: Any = None) -> float | None:
    """Publish minutes since the newest loaded batch; return the value (None: nothing loaded
    yet, or no namespace configured). A failure to publish is logged, never raised: the alarm
    then sees missing data, which it treats as late."""
    if not settings.metrics_namespace:
        return None
    minutes = minutes_since(newest_batch(wh))
    if minutes is None:
        return None
    try:
        cloudwatch = cloudwatch or aws_client("cloudwatch", region_name=settings.aws_region)
        cloudwatch.put_metric_data(
            Namespace=settings.metrics_namespace,
            MetricData=[{"MetricName": FRESHNESS_METRIC, "Value": round(minutes, 1), "Unit": "None"}],
        )
    except Exception as exc:
        log.warning("could not publish %s to CloudWatch: %s", FRESHNESS_METRIC, exc)
    return minutes
