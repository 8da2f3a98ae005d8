"""The Lambda that starts the right Glue job for an S3 event or the hourly schedule.

* A new batch manifest, `<prefix>/olist/<table>/current|historical/batch=<id>/_manifest.json`, starts
  the load job (load new batches, then dbt build). One load run takes every pending batch, so
  the hourly burst of manifests (one per changed table) needs one run: a manifest is
  "coalesced" when a load run is still queued or starting (it lists the batches when its code
  starts, after this manifest was written). Otherwise a new run is started; with job run
  queuing on, it waits for a running load to finish. Without queuing, Glue refuses the start
  (MaxConcurrentRuns = 1) and the running load, which looks again for new batches before it
  exits, takes the batch.
* A new funnel file, `<prefix>/landing/funnel/<name>.csv`, starts the conversion job with that
  file's key as `--source_key`.
* The EventBridge schedule (`source` = aws.events, a "Scheduled Event") starts the extract job.

S3 delivers events at least once, and EventBridge too, so each event is claimed before its job
starts: an empty marker object `<prefix>/_trigger/<sha256 of the event's identity>` written with
`If-None-Match: *`. A second delivery finds the marker and starts nothing. Every S3 and Glue call
retries throttling and transient errors itself (botocore's standard retry mode,
loaders/aws/clients.py). If starting the job still fails for a reason that may pass (throttling
that outlived those retries, a full funnel queue), the marker is removed again and the handler
raises at the end, so Lambda's own retry re-delivers the event; records that did start are not
started twice on that retry, since their markers remain.

Keys in S3 event records are URL-encoded (`+` for spaces, `%XX` for other bytes): they are
decoded before anything else. Keys outside the expected prefixes are ignored with a log line,
and a malformed event or record is reported in the summary, never raised.

Configuration (environment of the function): DATA_BUCKET, STORE_PREFIX (the key prefix of the
object store, may be empty), LOAD_JOB_NAME, FUNNEL_JOB_NAME, EXTRACT_JOB_NAME. Only the standard
library, boto3, the store layout (loaders/layout.py, standard library only) and the client
settings (loaders/aws/clients.py, boto3 only) are imported here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from .. import layout
from .clients import client, error_code, may_pass

log = logging.getLogger("dwh.trigger")
log.setLevel(logging.INFO)

PENDING_STATES = ("STARTING", "WAITING")  # WAITING: queued behind a running run (job run queuing)


class RetryLater(RuntimeError):
    """Some records could not start their job for a reason that may pass; Lambda retries the event."""


@dataclass(frozen=True)
class Config:
    bucket: str
    prefix: str
    load_job: str
    funnel_job: str
    extract_job: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Config:
        env = dict(os.environ if env is None else env)
        missing = [k for k in ("DATA_BUCKET", "LOAD_JOB_NAME", "FUNNEL_JOB_NAME", "EXTRACT_JOB_NAME") if not env.get(k)]
        if missing:
            raise RuntimeError(f"the trigger function is missing its configuration: {', '.join(missing)}")
        return cls(
            env["DATA_BUCKET"],
            env.get("STORE_PREFIX", "").strip("/"),
            env["LOAD_JOB_NAME"],
            env["FUNNEL_JOB_NAME"],
            env["EXTRACT_JOB_NAME"],
        )

    def relative(self, key: str) -> str | None:
        """The key inside the object store, or None when it is outside the store's prefix."""
        if not self.prefix:
            return key
        return key[len(self.prefix) + 1 :] if key.startswith(self.prefix + "/") else None

    def marker_key(self, identity: str) -> str:
        name = hashlib.sha256(identity.encode("utf-8")).hexdigest()
        key = layout.trigger_marker(name)
        return f"{self.prefix}/{key}" if self.prefix else key


@dataclass
class Summary:
    started: list[dict[str, str]] = field(default_factory=list)  # {"job", "run_id", "because"}
    coalesced: list[dict[str, str]] = field(default_factory=list)  # load requests a running load will take
    duplicates: list[str] = field(default_factory=list)  # events already handled
    ignored: list[str] = field(default_factory=list)  # keys outside the expected prefixes
    malformed: list[str] = field(default_factory=list)  # what was wrong with the event or record
    failed: list[dict[str, str]] = field(default_factory=list)  # {"job", "because", "error"}

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Request:
    """A job to start for one event."""

    job: str  # "load" | "funnel" | "extract"
    because: str  # the decoded key, or "schedule"
    identity: str  # what makes a re-delivery of the same event recognisable
    arguments: dict[str, str] = field(default_factory=dict)


def classify(event: Any, config: Config, summary: Summary) -> list[Request]:
    """The job requests an event asks for; everything else lands in the summary."""
    if not isinstance(event, dict):
        summary.malformed.append(f"event is a {type(event).__name__}, not an object")
        return []
    if event.get("source") == "aws.events" or event.get("detail-type") == "Scheduled Event":
        identity = str(event.get("id") or event.get("time") or "")
        if not identity:
            summary.malformed.append("scheduled event without id or time")
            return []
        return [Request("extract", "schedule", f"schedule:{identity}")]
    records = event.get("Records")
    if not isinstance(records, list):
        summary.malformed.append("event has neither Records (S3) nor source aws.events (schedule)")
        return []
    requests = []
    for index, record in enumerate(records):
        try:
            s3 = record["s3"]
            bucket = s3["bucket"]["name"]
            raw_key = s3["object"]["key"]
            name = record.get("eventName", "")
        except (KeyError, TypeError):
            summary.malformed.append(f"record {index}: not an S3 event record (no s3.bucket.name / s3.object.key)")
            continue
        if not isinstance(raw_key, str) or not isinstance(bucket, str):
            summary.malformed.append(f"record {index}: bucket or key is not a string")
            continue
        key = unquote_plus(raw_key)
        if not str(name).startswith("ObjectCreated"):
            summary.ignored.append(key)
            log.info("ignored %s: event %s is not an object creation", key, name)
            continue
        if bucket != config.bucket:
            summary.ignored.append(key)
            log.info("ignored %s: bucket %s is not the pipeline's bucket", key, bucket)
            continue
        inside = config.relative(key)
        # S3 gives each object event a sequencer; a re-delivery repeats it, a new upload does not.
        identity = f"s3:{bucket}/{key}:{s3['object'].get('sequencer') or s3['object'].get('eTag') or ''}"
        if inside is not None and layout.MANIFEST_KEY.fullmatch(inside):
            requests.append(Request("load", key, identity))
        elif inside is not None and layout.FUNNEL_LANDING_KEY.fullmatch(inside):
            requests.append(Request("funnel", key, identity, {"--source_key": inside}))
        else:
            summary.ignored.append(key)
            log.info("ignored %s: not a batch manifest or a funnel landing file", key)
    return requests


_error_code = error_code


class Trigger:
    def __init__(self, config: Config, s3=None, glue=None):
        self.config = config
        self.s3 = s3 or client("s3")
        self.glue = glue or client("glue")

    def claim(self, request: Request) -> bool:
        """True when this event is seen for the first time (its marker is now written)."""
        try:
            self.s3.put_object(
                Bucket=self.config.bucket,
                Key=self.config.marker_key(request.identity),
                Body=json.dumps({"job": request.job, "because": request.because}).encode(),
                IfNoneMatch="*",
            )
            return True
        except Exception as exc:  # botocore.exceptions.ClientError, without importing botocore here
            if _error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                return False
            raise

    def release(self, request: Request) -> None:
        try:
            self.s3.delete_object(Bucket=self.config.bucket, Key=self.config.marker_key(request.identity))
        except Exception as exc:  # the retry will then be seen as a duplicate: say so loudly
            log.error(
                "could not release the marker of %s (%s): a retry of this event will be skipped",
                request.because,
                _error_code(exc),
            )

    def load_pending(self, name: str) -> bool:
        """Whether a load run is queued or starting (its code has not listed the batches yet)."""
        try:
            runs = self.glue.get_job_runs(JobName=name, MaxResults=20).get("JobRuns", [])
        except Exception as exc:  # then start one: an extra run finds nothing and costs a minute
            log.warning("could not list the runs of %s (%s)", name, _error_code(exc))
            return False
        return any(run.get("JobRunState") in PENDING_STATES for run in runs)

    def job_name(self, job: str) -> str:
        return {"load": self.config.load_job, "funnel": self.config.funnel_job, "extract": self.config.extract_job}[job]

    def handle(self, event: Any) -> Summary:
        summary = Summary()
        requests = classify(event, self.config, summary)
        load_started = False
        retry = False
        for request in requests:
            try:
                fresh = self.claim(request)
            except Exception as exc:
                summary.failed.append({"job": request.job, "because": request.because, "error": _error_code(exc)})
                log.error("could not record %s (%s)", request.because, _error_code(exc))
                retry = True
                continue
            if not fresh:
                summary.duplicates.append(request.because)
                log.info("duplicate delivery of %s: its job was already started", request.because)
                continue
            name = self.job_name(request.job)
            if request.job == "load" and (load_started or self.load_pending(name)):
                # A run that has not started its code yet lists the batches when it does, and
                # this manifest is already written: that run takes this batch too.
                summary.coalesced.append({"job": name, "because": request.because})
                log.info("%s: a %s run that has not started yet will take this batch", request.because, name)
                continue
            try:
                run = self.glue.start_job_run(JobName=name, Arguments=request.arguments)
            except Exception as exc:
                code = _error_code(exc)
                if request.job == "load" and code == "ConcurrentRunsExceededException":
                    # The running load looks for new batches again before it exits.
                    summary.coalesced.append({"job": name, "because": request.because})
                    log.info("%s: a %s run is in progress and will take this batch", request.because, name)
                    continue
                self.release(request)
                summary.failed.append({"job": name, "because": request.because, "error": code})
                log.error("could not start %s for %s: %s", name, request.because, code)
                retry = retry or may_pass(exc)
                continue
            load_started = load_started or request.job == "load"
            summary.started.append({"job": name, "run_id": run.get("JobRunId", ""), "because": request.because})
            log.info("started %s run %s for %s", name, run.get("JobRunId", ""), request.because)
        if retry:
            raise RetryLater(json.dumps(summary.as_dict()))
        return summary


_trigger: Trigger | None = None


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """The Lambda entry point: returns a summary of what it started, skipped and ignored."""
    global _trigger
    if _trigger is None:
        _trigger = Trigger(Config.from_env())
    summary = _trigger.handle(event)
    log.info("summary %s", json.dumps(summary.as_dict()))
    return summary.as_dict()
