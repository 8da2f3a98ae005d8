"""Alerts on AWS (infra/template.yaml): an SNS topic fed by failed Glue job runs, the trigger's
errors and a freshness alarm on the metric the load job publishes. The template's own
resources are created in moto (SNS, CloudWatch, EventBridge) and driven with real events."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import boto3
import pytest

from loaders import pipeline
from loaders.aws import glue_jobs
from loaders.aws.clients import MAX_ATTEMPTS, error_code, may_pass, retry_config
from loaders.aws.metrics import FRESHNESS_METRIC

from .helpers import fill_source, quiet
from .test_infra import load_template

pytestmark = pytest.mark.s3


def _resource(name: str) -> dict:
    return load_template()["Resources"][name]["Properties"]


def _sub(value, stack: str, names: dict[str, str] | None = None):
    """Resolve the few intrinsics these resources use, for a stack named `stack`."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        return value["Fn::Sub"].replace("${AWS::StackName}", stack)
    if isinstance(value, dict) and "Ref" in value:
        return (names or {})[value["Ref"]]
    if isinstance(value, list):
        return [_sub(v, stack, names) for v in value]
    if isinstance(value, dict):
        return {k: _sub(v, stack, names) for k, v in value.items()}
    return value


def test_the_template_alerts_on_failures_errors_and_staleness():
    resources = load_template()["Resources"]
    parameters = load_template()["Parameters"]
    subscription = resources["AlertEmailSubscription"]
    assert subscription["Condition"] == "HasAlertEmail" and subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlertEmail"} and parameters["AlertEmail"]["Default"] == ""
    rule = _resource("GlueJobFailedRule")
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.glue"] and pattern["detail-type"] == ["Glue Job State Change"]
    assert {"FAILED", "TIMEOUT"} <= set(pattern["detail"]["state"])
    assert pattern["detail"]["jobName"] == [{"Ref": "ExtractJob"}, {"Ref": "LoadJob"}, {"Ref": "FunnelJob"}]
    assert [t["Arn"] for t in rule["Targets"]] == [{"Ref": "AlertTopic"}]
    errors = _resource("TriggerErrorsAlarm")
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "TriggerFunction"}}]
    freshness = _resource("FreshnessAlarm")
    load_job = _resource("LoadJob")["DefaultArguments"]
    assert freshness["MetricName"] == FRESHNESS_METRIC
    assert freshness["Namespace"] == load_job["--metrics_namespace"]  # what the load job publishes to
    assert freshness["TreatMissingData"] == "breaching"  # no load at all is late too
    assert freshness["Threshold"] == {"Ref": "FreshnessThresholdMinutes"}
    for alarm in (errors, freshness):
        assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]
    metrics_grant = next(
        st for st in _resource("GlueJobRole")["Policies"][0]["PolicyDocument"]["Statement"] if st["Sid"] == "JobMetrics"
    )
    assert load_job["--metrics_namespace"] in metrics_grant["Condition"]["StringEquals"]["cloudwatch:namespace"]
    principals = {st["Principal"]["Service"] for st in _resource("AlertTopicPolicy")["PolicyDocument"]["Statement"]}
    assert principals == {"events.amazonaws.com", "cloudwatch.amazonaws.com"}
    retries = parameters["GlueJobMaxRetries"]
    assert 1 <= retries["Default"] <= retries["MaxValue"] <= 3  # bounded
    for job in ("ExtractJob", "LoadJob", "FunnelJob"):
        assert _resource(job)["MaxRetries"] == {"Ref": "GlueJobMaxRetries"}
        assert _resource(job)["DefaultArguments"]["--log_format"] == "json"  # CloudWatch Logs Insights


@pytest.fixture
def stack(s3_endpoint):
    name = f"t{secrets.token_hex(3)}"
    clients = {
        service: boto3.client(service, endpoint_url=s3_endpoint, region_name="us-east-1")
        for service in ("sns", "events", "cloudwatch")
    }
    topic = clients["sns"].create_topic(Name=f"{name}-alerts", Attributes={"DisplayName": "olist-dwh alerts"})
    return {"name": name, "topic": topic["TopicArn"], **clients}


def test_a_failed_glue_run_matches_the_rule_that_feeds_the_topic(stack, s3_endpoint):
    """moto's EventBridge matches events against the template's pattern for real; it delivers to
    SQS and not to SNS, so a queue stands in for the topic to see which events the rule passes."""
    names = {"ExtractJob": f"{stack['name']}-extract", "LoadJob": f"{stack['name']}-load", "FunnelJob": "f"}
    names["AlertTopic"] = stack["topic"]
    rule = _sub(_resource("GlueJobFailedRule"), stack["name"], names)
    assert [t["Arn"] for t in rule["Targets"]] == [stack["topic"]]
    events, sns = stack["events"], stack["sns"]
    sqs = boto3.client("sqs", endpoint_url=s3_endpoint, region_name="us-east-1")
    queue = sqs.create_queue(QueueName=f"{stack['name']}-seen")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"{stack['name']}-glue-failed", EventPattern=json.dumps(rule["EventPattern"]), State="ENABLED")
    events.put_targets(Rule=f"{stack['name']}-glue-failed", Targets=[{"Id": "seen", "Arn": queue_arn}])

    def glue_event(job: str, state: str) -> dict:
        detail = {"jobName": job, "state": state, "jobRunId": f"jr_{state}", "message": "exit code 1"}
        return {"Source": "aws.glue", "DetailType": "Glue Job State Change", "Detail": json.dumps(detail)}

    sent = [
        (names["LoadJob"], "FAILED"),
        (names["ExtractJob"], "TIMEOUT"),
        (names["LoadJob"], "SUCCEEDED"),
        ("someone-elses-job", "FAILED"),
    ]
    events.put_events(Entries=[glue_event(job, state) for job, state in sent])
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    passed = sorted((m["detail"]["jobName"], m["detail"]["state"]) for m in (json.loads(r["Body"]) for r in received))
    assert passed == sorted(sent[:2])  # the failed and timed-out runs of this stack's jobs, nothing else
    sns.subscribe(TopicArn=stack["topic"], Protocol="email", Endpoint="oncall@example.com")
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=stack["topic"])["Subscriptions"]
    assert subscription["Protocol"] == "email"


def test_the_load_job_publishes_the_metric_the_freshness_alarm_reads(stack, settings, olist_csv, monkeypatch):
    """The load job (embedded defaults, dbt build left out) publishes minutes since the newest
    batch, also when the load fails; the template's alarm, created in moto, watches that metric."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack["cloudwatch"].meta.endpoint_url)
    monkeypatch.setattr(pipeline, "build", lambda *args, **kwargs: None)  # not what is under test
    namespace = _sub(_resource("LoadJob")["DefaultArguments"]["--metrics_namespace"], stack["name"])
    fill_source(settings, olist_csv, ["orders"])
    pipeline.extract(settings, quiet(), "historical", ["orders"])
    lines: list[str] = []
    argv = ["--data_dir", str(settings.data_dir), "--metrics_namespace", namespace, "--tables", "orders"]
    glue_jobs.run("load", argv, env={}, echo=lines.append)
    assert any(FRESHNESS_METRIC in line for line in lines)
    cloudwatch = stack["cloudwatch"]
    (metric,) = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    assert metric["MetricName"] == FRESHNESS_METRIC
    (batch,) = pipeline.extract(settings, quiet(), "historical", ["orders"])  # then a corrupted batch
    part = Path(settings.store_url) / batch.parts[0].path
    part.write_bytes(part.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(Exception, match="corrupted"):
        glue_jobs.run("load", argv, env={}, echo=lines.append)
    assert sum(FRESHNESS_METRIC in line for line in lines) == 2  # published after the failure too

    default = load_template()["Parameters"]["FreshnessThresholdMinutes"]["Default"]
    alarm = _sub(
        _resource("FreshnessAlarm"), stack["name"], {"AlertTopic": stack["topic"], "FreshnessThresholdMinutes": default}
    )
    cloudwatch.put_metric_alarm(AlarmName=f"{stack['name']}-freshness", **alarm)
    (created,) = cloudwatch.describe_alarms(AlarmNames=[f"{stack['name']}-freshness"])["MetricAlarms"]
    assert (created["Namespace"], created["MetricName"]) == (namespace, FRESHNESS_METRIC)
    assert created["AlarmActions"] == [stack["topic"]] and created["TreatMissingData"] == "breaching"


def test_aws_clients_retry_in_standard_mode_and_say_what_may_pass():
    from botocore.exceptions import ClientError, EndpointConnectionError

    config = retry_config()
    assert config.retries == {"mode": "standard", "max_attempts": MAX_ATTEMPTS}

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "StartJobRun")

    assert may_pass(client_error("ThrottlingException", 400))  # botocore's throttling codes
    assert may_pass(client_error("InternalServiceException", 500))  # a 5xx
    assert may_pass(client_error("ConcurrentRunsExceededException", 400))  # Glue's full queue
    assert may_pass(EndpointConnectionError(endpoint_url="https://glue"))  # the network
    assert not may_pass(client_error("AccessDeniedException", 400))
    assert not may_pass(client_error("EntityNotFoundException", 400))
    assert error_code(client_error("EntityNotFoundException", 400)) == "EntityNotFoundException"
