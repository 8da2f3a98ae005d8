"""AWS clients with botocore's standard retry mode, and what an error that outlived it means.

Every AWS call of the pipeline (S3 through s3fs, Glue, Secrets Manager, CloudWatch, the trigger's
Glue and S3 calls) retries throttling, 5xx answers, timeouts and dropped connections with
botocore's `standard` mode: exponential backoff with jitter and a retry quota, up to
`MAX_ATTEMPTS` attempts in all. No call site keeps a list of its own.

Imports only the standard library and botocore/boto3: the trigger Lambda ships this module
(loaders/aws/package.py), and the Lambda runtime provides boto3.
"""

from __future__ import annotations

from typing import Any

MAX_ATTEMPTS = 5
RETRIES: dict[str, Any] = {"mode": "standard", "max_attempts": MAX_ATTEMPTS}
"""botocore's retry configuration, for `botocore.config.Config(retries=...)` and s3fs's
`config_kwargs`."""
GLUE_CAPACITY_ERRORS = frozenset({"ConcurrentRunsExceededException", "ResourceNumberLimitExceededException"})
"""Glue's answers when a job's run queue or the account's capacity is full: not retried by
botocore (they are not transient at the HTTP level), but a later attempt may succeed."""


def retry_config() -> Any:
    """A botocore Config with the standard retry mode."""
    from botocore.config import Config

    return Config(retries=dict(RETRIES))


def client(service: str, region_name: str | None = None, endpoint_url: str | None = None) -> Any:
    """A boto3 client for `service` with the standard retry mode."""
    import boto3

    return boto3.client(service, region_name=region_name, endpoint_url=endpoint_url or None, config=retry_config())


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, or the exception's type name."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))


def may_pass(exc: BaseException) -> bool:
    """Whether a call that failed even after its retries may succeed later: what botocore's
    standard mode counts as throttling or transient (its own checkers decide), or a Glue
    capacity error. Access denied, a missing job or a bad argument will not pass."""
    from botocore.retries import standard

    if error_code(exc) in GLUE_CAPACITY_ERRORS:
        return True
    response = getattr(exc, "response", None)
    context = standard.RetryContext(
        attempt_number=1, parsed_response=response, caught_exception=None if response else exc
    )
    if standard.ThrottledRetryableChecker().is_retryable(context):
        return True
    if standard.TransientRetryableChecker().is_retryable(context):
        return True
    status = int(((response or {}).get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    return status >= 500
