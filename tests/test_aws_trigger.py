"""The trigger Lambda against moto's server (S3 for the event markers, Glue for the job runs).

Events are shaped as S3 and EventBridge send them: several records per event, URL-encoded keys,
unrelated keys, re-deliveries, malformed input.
"""

from __future__ import annotations

import copy
import json
import secrets
from urllib.parse import quote_plus

import boto3
import pytest
import requests

from loaders import pipeline
from loaders.aws import trigger
from loaders.aws.trigger import Config, RetryLater, Trigger
from olist_demo.funnel_generator import generate_funnel

from .helpers import quiet
from .test_infra import load_template

PREFIX = "olist"


def s3_record(bucket: str, key: str, sequencer: str | None = None, name: str = "ObjectCreated:Put") -> dict:
    """An S3 event record as S3 sends it: the key URL-encoded, spaces as '+'."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-22T10:00:00.000Z",
        "eventName": name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "dwh",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": 1234,
                "eTag": "0123abcd",
                "sequencer": sequencer or secrets.token_hex(8).upper(),
            },
        },
    }


def scheduled_event(rule_arn: str, event_id: str) -> dict:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-22T10:05:00Z",
        "region": "us-east-1",
        "resources": [rule_arn],
        "detail": {},
    }


@pytest.fixture
def aws(s3_endpoint, s3_bucket):
    """Glue jobs as the template defines them (names per test), clients, and the trigger."""
    glue = boto3.client("glue", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    stack = f"t{secrets.token_hex(3)}"
    jobs = {}
    for job, concurrency in (("extract", 1), ("load", 1), ("funnel", 2)):
        name = f"{stack}-{job}"
        glue.create_job(
            Name=name,
            Role="arn:aws:iam::123456789012:role/glue",
            Command={"Name": "glueetl", "ScriptLocation": f"s3://artifacts/glue/jobs/{job}.py"},
            ExecutionProperty={"MaxConcurrentRuns": concurrency},
        )
        jobs[job] = name
    config = Config(s3_bucket, PREFIX, jobs["load"], jobs["funnel"], jobs["extract"])
    yield {
        "glue": glue,
        "s3": s3,
        "jobs": jobs,
        "config": config,
        "bucket": s3_bucket,
        "trigger": Trigger(config, s3=s3, glue=glue),
    }
    for name in jobs.values():
        glue.delete_job(JobName=name)


@pytest.fixture
def job_run_states(s3_endpoint):
    """Control how moto advances Glue job runs: `set(times)` keeps a run STARTING until listed `times` times."""
    url = f"{s3_endpoint}/moto-api/state-manager"

    def set_manual(times: int) -> None:
        requests.post(
            f"{url}/set-transition",
            timeout=5,
            json={"model_name": "glue::job_run", "transition": {"progression": "manual", "times": times}},
        ).raise_for_status()

    yield set_manual
    requests.post(f"{url}/unset-transition", json={"model_name": "glue::job_run"}, timeout=5).raise_for_status()


def runs(aws, job: str) -> list[dict]:
    return aws["glue"].get_job_runs(JobName=aws["jobs"][job])["JobRuns"]


def test_records_start_the_right_jobs_with_decoded_keys(aws):
    bucket = aws["bucket"]
    funnel_key = f"{PREFIX}/landing/funnel/2018 funnel ção+1.csv"  # a space, non-ASCII, a literal '+'
    event = {
        "Records": [
            s3_record(bucket, f"{PREFIX}/olist/orders/current/batch=20261122T100000Z-ab12/_manifest.json"),
            s3_record(bucket, f"{PREFIX}/olist/order_items/historical/batch=20261122T100000Z-cd34/_manifest.json"),
            s3_record(bucket, funnel_key),
            s3_record(bucket, f"{PREFIX}/olist/orders/current/batch=20261122T100000Z-ab12/part-00000.parquet"),
            s3_record(bucket, "elsewhere/landing/funnel/x.csv"),
            s3_record("another-bucket", f"{PREFIX}/olist/orders/current/batch=1/_manifest.json"),
            s3_record(bucket, f"{PREFIX}/landing/funnel/old.csv", name="ObjectRemoved:Delete"),
            {"eventSource": "aws:s3", "s3": {"bucket": {"name": bucket}}},  # no object
            "not a record",
        ]
    }
    summary = aws["trigger"].handle(event)

    assert [s["job"] for s in summary.started] == [aws["jobs"]["load"], aws["jobs"]["funnel"]]
    assert len(summary.coalesced) == 1  # the second manifest rides on the same load run
    assert sorted(summary.ignored) == sorted(
        [
            f"{PREFIX}/olist/orders/current/batch=20261122T100000Z-ab12/part-00000.parquet",
            "elsewhere/landing/funnel/x.csv",
            f"{PREFIX}/olist/orders/current/batch=1/_manifest.json",
            f"{PREFIX}/landing/funnel/old.csv",
        ]
    )
    assert len(summary.malformed) == 2 and all(m.startswith("record ") for m in summary.malformed)
    (load_run,) = runs(aws, "load")
    (funnel_run,) = runs(aws, "funnel")
    assert funnel_run["Arguments"]["--source_key"] == "landing/funnel/2018 funnel ção+1.csv"
    assert runs(aws, "extract") == []


def test_a_redelivered_event_starts_nothing_more(aws):
    record = s3_record(aws["bucket"], f"{PREFIX}/landing/funnel/2017_funnel.csv", sequencer="0A1B2C3D4E5F")
    first = aws["trigger"].handle({"Records": [record]})
    again = aws["trigger"].handle({"Records": [copy.deepcopy(record)]})
    assert len(first.started) == 1 and again.started == []
    assert again.duplicates == [f"{PREFIX}/landing/funnel/2017_funnel.csv"]
    assert len(runs(aws, "funnel")) == 1
    # the same key uploaded again is a new event (new sequencer): it converts again
    newer = aws["trigger"].handle({"Records": [s3_record(aws["bucket"], f"{PREFIX}/landing/funnel/2017_funnel.csv")]})
    assert len(newer.started) == 1 and len(runs(aws, "funnel")) == 2


def test_manifests_coalesce_into_a_load_that_has_not_started(aws, job_run_states):
    job_run_states(1000)  # runs stay STARTING
    manifest = f"{PREFIX}/olist/customers/current/batch=%s/_manifest.json"
    first = aws["trigger"].handle({"Records": [s3_record(aws["bucket"], manifest % "b1")]})
    second = aws["trigger"].handle({"Records": [s3_record(aws["bucket"], manifest % "b2")]})
    assert len(first.started) == 1
    assert second.started == [] and [c["because"] for c in second.coalesced] == [manifest % "b2"]
    assert len(runs(aws, "load")) == 1


def test_a_running_load_takes_the_batch_when_glue_refuses_a_second_run(aws, job_run_states):
    job_run_states(1)  # each listing moves a run one state on: STARTING -> RUNNING
    manifest = f"{PREFIX}/olist/payments/current/batch=%s/_manifest.json"
    aws["trigger"].handle({"Records": [s3_record(aws["bucket"], manifest % "b1")]})
    summary = aws["trigger"].handle({"Records": [s3_record(aws["bucket"], manifest % "b2")]})
    assert len(runs(aws, "load")) == 1
    assert summary.started == [] and summary.failed == []
    assert [c["because"] for c in summary.coalesced] == [manifest % "b2"]


def test_the_schedule_starts_the_extract_once_per_event(aws, s3_endpoint):
    """The EventBridge rule of the template, created in moto, delivers the event the trigger handles."""
    events = boto3.client("events", endpoint_url=s3_endpoint, region_name="us-east-1")
    rule = load_template()["Resources"]["HourlyExtractRule"]["Properties"]
    expression = load_template()["Parameters"]["ScheduleExpression"]["Default"]
    name = f"{aws['jobs']['extract']}-hourly"
    arn = events.put_rule(Name=name, ScheduleExpression=expression, State="ENABLED", Description=rule["Description"])[
        "RuleArn"
    ]
    events.put_targets(
        Rule=name, Targets=[{"Id": "trigger", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:t"}]
    )
    assert events.describe_rule(Name=name)["ScheduleExpression"] == "cron(5 * * * ? *)"

    event = scheduled_event(arn, "7bf73129-1428-4cd3-a780-95db273d1602")
    first = aws["trigger"].handle(event)
    again = aws["trigger"].handle(copy.deepcopy(event))  # EventBridge delivers at least once
    assert [s["because"] for s in first.started] == ["schedule"]
    assert again.started == [] and again.duplicates == ["schedule"]
    assert len(runs(aws, "extract")) == 1
    later = aws["trigger"].handle(scheduled_event(arn, "0d1c2b3a-0000-4000-8000-000000000001"))
    assert len(later.started) == 1 and len(runs(aws, "extract")) == 2
    events.remove_targets(Rule=name, Ids=["trigger"])
    events.delete_rule(Name=name)


@pytest.mark.parametrize(
    "event",
    [
        None,
        "text",
        42,
        [],
        {},
        {"Records": "x"},
        {"Records": [None]},
        {"Records": [{"s3": {"bucket": {"name": 1}, "object": {"key": 2}}}]},
        {"detail-type": "Scheduled Event"},
    ],
)
def test_malformed_events_never_raise(aws, event):
    summary = aws["trigger"].handle(event)
    assert summary.started == [] and summary.malformed


def test_failures_release_the_marker_so_a_retry_can_start_the_job(aws):
    """A job that cannot start (here: it does not exist) is reported; the same event later starts it."""
    record = s3_record(aws["bucket"], f"{PREFIX}/landing/funnel/late.csv", sequencer="FFEE")
    broken = Trigger(
        Config(aws["bucket"], PREFIX, "missing-load", "missing-funnel", "missing-extract"),
        s3=aws["s3"],
        glue=aws["glue"],
    )
    summary = broken.handle({"Records": [record]})
    assert summary.started == [] and summary.failed[0]["error"] == "EntityNotFoundException"
    retried = aws["trigger"].handle({"Records": [copy.deepcopy(record)]})
    assert len(retried.started) == 1 and retried.duplicates == []


def test_throttling_raises_for_lambda_to_retry_and_keeps_what_started(aws):
    """A transient Glue error makes the handler raise (Lambda retries); the retry starts only the rest."""

    class FlakyGlue:
        def __init__(self, real):
            self.real, self.fail = real, True

        def get_job_runs(self, **kw):
            return self.real.get_job_runs(**kw)

        def start_job_run(self, **kw):
            if kw["JobName"] == aws["jobs"]["funnel"] and self.fail:
                from botocore.exceptions import ClientError

                raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "StartJobRun")
            return self.real.start_job_run(**kw)

    glue = FlakyGlue(aws["glue"])
    flaky = Trigger(aws["config"], s3=aws["s3"], glue=glue)
    event = {
        "Records": [
            s3_record(aws["bucket"], f"{PREFIX}/olist/orders/current/batch=x/_manifest.json", "01"),
            s3_record(aws["bucket"], f"{PREFIX}/landing/funnel/a.csv", "02"),
        ]
    }
    with pytest.raises(RetryLater) as raised:
        flaky.handle(event)
    assert json.loads(str(raised.value))["failed"][0]["error"] == "ThrottlingException"
    glue.fail = False
    retry = flaky.handle(copy.deepcopy(event))
    assert [s["job"] for s in retry.started] == [aws["jobs"]["funnel"]]
    assert retry.duplicates == [f"{PREFIX}/olist/orders/current/batch=x/_manifest.json"]
    assert len(runs(aws, "load")) == 1 and len(runs(aws, "funnel")) == 1


def test_handler_reads_its_configuration_from_the_environment(aws, monkeypatch, s3_endpoint):
    for key, value in {
        "DATA_BUCKET": aws["bucket"],
        "STORE_PREFIX": PREFIX,
        "LOAD_JOB_NAME": aws["jobs"]["load"],
        "FUNNEL_JOB_NAME": aws["jobs"]["funnel"],
        "EXTRACT_JOB_NAME": aws["jobs"]["extract"],
        "AWS_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(trigger, "_trigger", None)
    result = trigger.handler({"Records": [s3_record(aws["bucket"], f"{PREFIX}/landing/funnel/b.csv")]}, None)
    assert json.loads(json.dumps(result))["started"][0]["job"] == aws["jobs"]["funnel"]
    monkeypatch.setattr(trigger, "_trigger", None)
    monkeypatch.delenv("LOAD_JOB_NAME")
    with pytest.raises(RuntimeError, match="LOAD_JOB_NAME"):
        trigger.handler({"Records": []}, None)
    monkeypatch.setattr(trigger, "_trigger", None)


def _s3_filter_matches(key: str, rules: list[dict], prefix: str) -> bool:
    values = {r["Name"]: r["Value"].get("Fn::Sub", "") if isinstance(r["Value"], dict) else r["Value"] for r in rules}
    want_prefix = values.get("prefix", "").replace("${StorePrefix}", prefix)
    return key.startswith(want_prefix) and key.endswith(values.get("suffix", ""))


@pytest.mark.s3
def test_what_the_pipeline_writes_triggers_exactly_the_expected_jobs(aws, settings, olist_csv, tmp_path, s3_endpoint):
    """Real extract and landing on S3, the template's notification filters, then the trigger."""
    s = settings.with_(store_url=f"s3://{aws['bucket']}/{PREFIX}", s3_endpoint_url=s3_endpoint)
    pipeline.load_source(s, olist_csv, quiet())
    pipeline.extract(s, quiet(), "historical", ["orders", "order_items"])
    generate_funnel(tmp_path, olist_csv, rows_per_file=200, years=(2017,), seed=5)
    pipeline.funnel_land(s, quiet(), [tmp_path / "2017_funnel.csv"])

    notifications = load_template()["Resources"]["DataBucket"]["Properties"]["NotificationConfiguration"]
    filters = [c["Filter"]["S3Key"]["Rules"] for c in notifications["LambdaConfigurations"]]
    keys = [o["Key"] for o in aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix=f"{PREFIX}/")["Contents"]]
    notified = [k for k in keys if any(_s3_filter_matches(k, rules, PREFIX) for rules in filters)]
    assert sorted(k.rsplit("/", 1)[-1] for k in notified) == ["2017_funnel.csv", "_manifest.json", "_manifest.json"]

    summary = aws["trigger"].handle({"Records": [s3_record(aws["bucket"], k) for k in notified]})
    assert sorted(s["job"] for s in summary.started) == sorted([aws["jobs"]["load"], aws["jobs"]["funnel"]])
    assert summary.ignored == [] and summary.malformed == []
    (funnel_run,) = runs(aws, "funnel")
    assert funnel_run["Arguments"]["--source_key"] == "landing/funnel/2017_funnel.csv"
    # the trigger's own markers are outside every notification filter: no loop
    markers = [
        o["Key"] for o in aws["s3"].list_objects_v2(Bucket=aws["bucket"], Prefix=f"{PREFIX}/_trigger/")["Contents"]
    ]
    assert len(markers) == 3
    assert not any(_s3_filter_matches(k, rules, PREFIX) for k in markers for rules in filters)
