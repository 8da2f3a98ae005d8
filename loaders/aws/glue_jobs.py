"""The Glue job entry points: the CLI's pipeline stages, configured from job arguments.

Three jobs, one function each, calling the same `loaders.pipeline` functions as `dwh`:

* `extract` (hourly, from the schedule): extract every declared table (historical the first
  time, then incremental) from the source database into the object store.
* `load` (started by the trigger on a new batch manifest): load every pending batch, then
  `dbt build`; then look again for batches that arrived meanwhile, up to `--max_rounds` rounds.
  When no batch was new, dbt is not run (`--build always` runs it anyway).
* `funnel` (started by the trigger on a new landing file): convert `--source_key`, or every
  pending landing file, and register the new partitions in the Glue Data Catalog.

Arguments (Glue passes `--name value`; the Glue ones such as `--JOB_RUN_ID` are ignored):

* any setting by its field name, as in `dwh settings`: `--store_url s3://bucket/prefix`,
  `--warehouse redshift`, `--redshift_iam_role arn:...`, `--glue_database olist_funnel`, ...
  Passwords are refused here: job arguments show in the console and in logs.
* `--source_secret_id` / `--warehouse_secret_id`: Secrets Manager secrets (RDS/Redshift JSON
  format) for the source database and the warehouse. Their values are never printed.
* `--dbt_project_uri`: the dbt project zip made by `dwh package` (s3://... or a local path);
  without it, the project this package sits in.
* job options: `--mode` and `--tables` (extract, load), `--max_rounds` and `--build` (load),
  `--source_key` and `--force` (funnel).

Without any argument a job runs on the embedded defaults (SQLite, ./data/store, DuckDB), which is
how the tests run them: same code, other configuration.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from .. import pipeline
from ..config import ConfigError, Settings, _coerce
from ..console import configure_logging
from ..errors import USER_ERRORS
from ..report import Reporter, console_reporter
from ..runs import RunFailed
from .clients import RETRIES
from .secrets import apply_source_secret, apply_warehouse_secret, read_secret

JOB_OPTIONS = {
    "extract": {"mode", "tables"},
    "load": {"tables", "max_rounds", "build"},
    "funnel": {"source_key", "force"},
}
log = logging.getLogger("loaders.aws.glue_jobs")
COMMON_OPTIONS = {"source_secret_id", "warehouse_secret_id", "dbt_project_uri"}
SECRET_FIELDS = {f.name for f in fields(Settings) if f.metadata.get("secret")}


def parse_arguments(argv: list[str]) -> dict[str, str]:
    """`--name value` and `--name=value` pairs, as Glue passes job arguments."""
    args: dict[str, str] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"job argument {token!r}: expected --name value")
        name = token[2:]
        if "=" in name:
            name, value = name.split("=", 1)
            i += 1
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value = argv[i + 1]
            i += 2
        else:
            value = ""
            i += 1
        args[name] = value
    return args


def settings_from_arguments(
    job: str,
    args: dict[str, str],
    env: dict[str, str] | None = None,
    secrets_client=None,
    echo: Callable[[str], None] = print,
) -> Settings:
    """Settings from the environment, then job arguments, then secrets, then the dbt project."""
    known = {f.name: f for f in fields(Settings)}
    overrides: dict[str, object] = {}
    ignored = []
    for name, raw in args.items():
        if name in SECRET_FIELDS or (name == "source_url" and urlsplit(raw).password is not None):
            raise ConfigError(
                f"--{name}: a password cannot be a job argument (arguments are logged); "
                "use --source_secret_id / --warehouse_secret_id"
            )
        if name in known:
            overrides[name] = _coerce(name, raw, known[name].type)
        elif name not in COMMON_OPTIONS and name not in JOB_OPTIONS[job]:
            ignored.append(name)
    if ignored:
        echo(f"  ignoring job arguments: {', '.join(sorted(ignored))}")
    settings = Settings.from_env(env, **overrides)
    if args.get("source_secret_id"):
        settings = apply_source_secret(settings, read_secret(args["source_secret_id"], settings, secrets_client))
    if args.get("warehouse_secret_id"):
        settings = apply_warehouse_secret(settings, read_secret(args["warehouse_secret_id"], settings, secrets_client))
    if args.get("dbt_project_uri"):
        settings = settings.with_(project_dir=fetch_project(args["dbt_project_uri"], settings))
    return settings


def fetch_project(uri: str, settings: Settings) -> Path:
    """Unpack the dbt project zip (from S3 or a local path) into <data_dir>/dbt_project.

    Only the object itself is read (s3:GetObject): the job role needs no listing right on the
    artifact bucket.
    """
    import fsspec

    if not uri.endswith(".zip"):
        raise ConfigError(f"--dbt_project_uri={uri!r}: expected the .zip made by `dwh package`")
    if uri.startswith("s3://"):
        client_kwargs: dict[str, str] = {"region_name": settings.aws_region}
        if settings.s3_endpoint_url:
            client_kwargs["endpoint_url"] = settings.s3_endpoint_url
        fs = fsspec.filesystem("s3", client_kwargs=client_kwargs, config_kwargs={"retries": dict(RETRIES)})
        path = uri[len("s3://") :]
    else:
        fs, path = fsspec.filesystem("file"), uri.removeprefix("file://")
    target = settings.data_dir / "dbt_project"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    local = settings.data_dir / "dbt_project.zip"
    try:
        fs.get(path, str(local))
    except FileNotFoundError:
        raise ConfigError(f"--dbt_project_uri={uri!r}: no such object") from None
    except PermissionError:
        raise ConfigError(f"--dbt_project_uri={uri!r}: access denied to this role") from None
    try:
        with zipfile.ZipFile(local) as archive:
            archive.extractall(target)
    except zipfile.BadZipFile:
        raise ConfigError(f"--dbt_project_uri={uri!r} is not a zip file") from None
    finally:
        local.unlink(missing_ok=True)
    if not (target / "dbt_project.yml").exists():
        raise ConfigError(f"--dbt_project_uri={uri!r} holds no dbt_project.yml")
    return target


def _tables(args: dict[str, str]) -> list[str] | None:
    names = [t.strip() for t in args.get("tables", "").split(",") if t.strip()]
    return names or None


def run_extract(settings: Settings, rep: Reporter, args: dict[str, str]) -> None:
    mode = args.get("mode") or "auto"
    if mode not in pipeline.EXTRACT_MODES:
        raise ConfigError(f"--mode={mode!r}: use {', '.join(pipeline.EXTRACT_MODES)}")
    pipeline.extract(settings, rep, cast(pipeline.ExtractMode, mode), _tables(args))


def run_load(settings: Settings, rep: Reporter, args: dict[str, str]) -> None:
    rounds = int(args.get("max_rounds") or 3)
    build = args.get("build") or "when-loaded"
    if build not in ("when-loaded", "always"):
        raise ConfigError(f"--build={build!r}: use when-loaded or always")
    since = len(rep.run.outcomes)
    historical = False
    try:
        for round_ in range(1, rounds + 1):
            try:
                reports = pipeline.load(settings, rep, _tables(args))
            except RunFailed as exc:  # a batch set aside: what did load is still built
                reports = exc.reports
            loaded = sum(r.status == "loaded" for r in reports)
            historical = historical or any(r.status == "loaded" and r.mode == "historical" for r in reports)
            if not loaded and not (round_ == 1 and build == "always"):
                rep.echo("  no new batch: dbt build not needed" if round_ == 1 else "  no batch arrived meanwhile")
                break
            pipeline.build(settings, rep, scope="all" if build == "always" and round_ == 1 else None)
        else:
            rep.echo(f"  stopped after {rounds} rounds; batches that arrived since wait for the next load")
        # DWH_VERIFY_EVERY / --verify_every: a verify-and-repair when due (docs/verify.md); a table
        # still differing after the repair is a failed unit, which rep.run.check below raises
        if pipeline.verify_due(settings, historical):
            try:
                pipeline.verify(settings, rep, _tables(args), repair=True)  # prints its cost
            except RunFailed:
                pass  # its failed units are in rep.run: rep.run.check below names them
    finally:  # also after a failure: the freshness alarm reads it
        _publish_freshness(settings, rep)
    rep.run.check(since)  # the job fails naming every batch set aside


def _publish_freshness(settings: Settings, rep: Reporter) -> None:
    """The freshness metric of the CloudWatch alarm (loaders/aws/metrics.py), when configured."""
    if not settings.metrics_namespace:
        return
    from ..store import ObjectStore
    from ..warehouses import open_warehouse
    from .metrics import FRESHNESS_METRIC, publish_freshness

    try:
        with open_warehouse(settings, ObjectStore(settings.store_url, settings)) as wh:
            minutes = publish_freshness(settings, wh)
    except Exception as exc:  # the warehouse is down: the alarm sees missing data, which breaches
        log.warning("freshness metric not published: %s", exc)
        return
    if minutes is not None:
        rep.echo(f"  {settings.metrics_namespace} {FRESHNESS_METRIC} = {minutes:.1f}")


def run_funnel(settings: Settings, rep: Reporter, args: dict[str, str]) -> None:
    pipeline.funnel_convert(
        settings, rep, args.get("source_key") or None, force=args.get("force", "").lower() in ("1", "true", "yes")
    )


JOBS = {"extract": run_extract, "load": run_load, "funnel": run_funnel}


def run(
    job: str,
    argv: list[str],
    env: dict[str, str] | None = None,
    secrets_client=None,
    echo: Callable[[str], None] | None = None,
) -> None:
    """Run one job; user errors propagate (see `main` for the exit status)."""
    if job not in JOBS:
        raise ConfigError(f"unknown job {job!r}: use {', '.join(JOBS)}")
    echo = echo or (lambda line: print(line, flush=True))
    started = time.perf_counter()
    args = parse_arguments(argv)
    settings = settings_from_arguments(job, args, env, secrets_client, echo)
    shown = settings.describe()
    if settings.log_format == "json":  # else Glue's own logging stays as it is
        configure_logging(settings.log_format)
    rep = console_reporter(settings.log_format, echo)
    rep.echo(
        f"dwh {job} job: warehouse {shown['warehouse']}, store {shown['store_url']}, "
        f"source {shown['source_url']}, dbt project {shown['project_dir']}"
    )
    JOBS[job](settings, rep, args)
    rep.echo(f"dwh {job} job finished in {time.perf_counter() - started:.1f}s")


def main(job: str | None = None, argv: list[str] | None = None) -> None:
    """Entry point of the Glue scripts (`main("load")`) and of `python -m loaders.aws.glue_jobs <job>`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if job is None:
        if not argv or argv[0].startswith("-"):
            print(f"usage: python -m loaders.aws.glue_jobs {{{','.join(JOBS)}}} [--name value ...]", file=sys.stderr)
            sys.exit(2)
        job, argv = argv[0], argv[1:]
    try:
        run(job, argv)
    except USER_ERRORS as exc:
        print(f"error: dwh {job} job: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
