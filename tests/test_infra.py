"""infra/template.yaml: cfn-lint clean, least privilege, and in step with the code it deploys."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from typing import get_args

import pytest
import yaml

from loaders import layout
from loaders.aws import glue_jobs
from loaders.aws.package import build as build_artifacts
from loaders.config import PROJECT_DIR

TEMPLATE = PROJECT_DIR / "infra" / "template.yaml"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short intrinsic tags (!Ref, !Sub, !GetAtt, ...)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: object = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref": value} if suffix == "Ref" else {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)


def resources(kind: str) -> dict[str, dict]:
    return {name: r for name, r in load_template()["Resources"].items() if r["Type"] == kind}


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CFN_LINT), "--include-checks", "I", "--", str(path)], capture_output=True, text=True, timeout=300
    )


def test_cfn_lint_passes_including_informational_checks():
    result = lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path):
    """The lint really inspects the file: a job with a misspelt property fails it."""
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("      NumberOfWorkers: 2\n", "      NumberOfWorker: 2\n", 1))
    result = lint(broken)
    assert result.returncode != 0 and "NumberOfWorker" in result.stdout


def _statements() -> list[tuple[str, dict]]:
    found = []
    for name, resource in load_template()["Resources"].items():
        props = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        if resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            documents.append(props["PolicyDocument"])
        for document in documents:
            found += [(name, statement) for statement in document["Statement"]]
    return found


# Actions IAM cannot scope to a resource; each is allowed on "*" and nothing else is.
UNSCOPED_ACTIONS = {
    "cloudwatch:PutMetricData",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcAttribute",
}


def test_iam_is_least_privilege():
    roles = resources("AWS::IAM::Role")
    assert set(roles) == {"GlueJobRole", "TriggerRole"}
    for name, role in roles.items():
        assert "ManagedPolicyArns" not in role["Properties"], f"{name}: managed policies (the seed's *FullAccess)"
    statements = _statements()
    assert len(statements) > 10
    for name, st in statements:
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        targets = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        assert st["Effect"] == "Allow", (name, st)
        assert "NotAction" not in st and "NotResource" not in st, (name, st)
        for action in actions:
            assert "*" not in action, f"{name}/{st.get('Sid')}: wildcard action {action}"
        if "*" in targets:
            assert set(actions) <= UNSCOPED_ACTIONS, f"{name}/{st.get('Sid')}: {actions} on every resource"
    # the trigger may start the three jobs and write its markers, nothing else
    trigger = {
        a
        for n, st in statements
        if n == "TriggerRole"
        for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
    }
    assert trigger == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "glue:StartJobRun",
        "glue:GetJobRuns",
        "s3:PutObject",
        "s3:DeleteObject",
    }
    # the role Redshift uses for COPY and Spectrum only reads
    redshift = [st for n, st in statements if n == "RedshiftReadPolicy"]
    assert all(
        a.split(":")[1].startswith(("Get", "List", "BatchGet"))
        for st in redshift
        for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
    )


def test_the_bucket_is_private_encrypted_and_notifies_the_trigger():
    bucket = load_template()["Resources"]["DataBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    functions = {c["Function"]["Fn::GetAtt"][0] for c in bucket["NotificationConfiguration"]["LambdaConfigurations"]}
    assert functions == {"TriggerFunction"}
    policy = load_template()["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert any(st["Effect"] == "Deny" and st["Condition"]["Bool"]["aws:SecureTransport"] == "false" for st in policy)


def _sub(value: object) -> str:
    return str(value["Fn::Sub"]) if isinstance(value, dict) else str(value)


def test_the_template_names_the_keys_of_the_store_layout():
    """The notification filters, the trigger's marker permission and the markers' expiry name
    the keys loaders/layout.py writes: a key renamed in the layout fails here, not on AWS."""
    template = load_template()
    bucket = template["Resources"]["DataBucket"]["Properties"]
    filters = [
        {rule["Name"]: _sub(rule["Value"]) for rule in c["Filter"]["S3Key"]["Rules"]}
        for c in bucket["NotificationConfiguration"]["LambdaConfigurations"]
    ]

    def notified(key: str) -> bool:
        full = f"${{StorePrefix}}/{key}"
        return any(full.startswith(f["prefix"]) and full.endswith(f.get("suffix", "")) for f in filters)

    batch_id = "20261130T031500123456Z-a1b2c3"
    assert layout.BATCH_ID.match(batch_id)
    for mode in layout.MODES:
        manifest = layout.batch_manifest(layout.batch_dir("orders", mode, batch_id))
        assert notified(manifest) and layout.MANIFEST_KEY.fullmatch(manifest), manifest
    landing = layout.funnel_landing("2017_funnel.csv")
    assert notified(landing) and layout.FUNNEL_LANDING_KEY.fullmatch(landing)
    quiet = [layout.state_path("orders"), layout.funnel_marker("2017_funnel"), layout.funnel_rejects("2017_funnel")]
    quiet += [layout.funnel_lake_file(2017, 3, "2017_funnel"), layout.trigger_marker("0" * 64)]
    assert not [key for key in quiet if notified(key)]

    (expiry,) = [r for r in bucket["LifecycleConfiguration"]["Rules"] if r["Id"] == "expire-trigger-markers"]
    assert _sub(expiry["Prefix"]) == f"${{StorePrefix}}/{layout.TRIGGER_MARKERS}/"
    (markers,) = [st for name, st in _statements() if name == "TriggerRole" and st.get("Sid") == "EventMarkers"]
    assert _sub(markers["Resource"]) == (
        f"arn:${{AWS::Partition}}:s3:::${{DataBucketName}}/${{StorePrefix}}/{layout.trigger_marker('*')}"
    )


def test_jobs_and_function_match_the_packaged_code(tmp_path):
    """Every script, handler, environment variable and job argument the template names exists."""
    artifacts = build_artifacts(tmp_path / "dist")
    template = load_template()
    for name, job in resources("AWS::Glue::Job").items():
        props = job["Properties"]
        script = props["Command"]["ScriptLocation"]["Fn::Sub"].split("${ArtifactPrefix}/", 1)[1]
        assert (artifacts.out / script).is_file(), f"{name}: {script} is not built by `dwh package`"
        kind = Path(script).stem
        assert props["GlueVersion"] == "5.0" and props["Command"]["Name"] == "glueetl"  # Python 3.11
        ours = [
            k[2:]
            for k in props["DefaultArguments"]
            if k not in ("--extra-py-files", "--additional-python-modules", "--job-language")
        ]
        known = glue_jobs.COMMON_OPTIONS | glue_jobs.JOB_OPTIONS[kind] | set(glue_jobs.Settings.__dataclass_fields__)
        assert set(ours) <= known, f"{name}: arguments the job does not read: {set(ours) - known}"
    function = template["Resources"]["TriggerFunction"]["Properties"]
    module, attribute = function["Handler"].rsplit(".", 1)
    with zipfile.ZipFile(artifacts.out / artifacts.files["trigger"]) as archive:
        assert f"{module.replace('.', '/')}.py" in archive.namelist()
    source = (PROJECT_DIR / "loaders" / "aws" / "trigger.py").read_text()
    assert f"def {attribute}(" in source
    for variable in function["Environment"]["Variables"]:
        assert f'"{variable}"' in source, f"the trigger does not read {variable}"
    for parameter in artifacts.parameters:
        assert parameter in template["Parameters"], f"parameters.txt sets {parameter}, the template lacks it"


@pytest.mark.parametrize("kind", ["AWS::SecretsManager::Secret"])
def test_secrets_hold_no_literal_password(kind):
    for name, secret in resources(kind).items():
        props = secret["Properties"]
        assert "SecretString" not in props, f"{name}: a literal secret value in the template"
        assert props["GenerateSecretString"]["GenerateStringKey"] == "password"


def test_dwh_package_builds_reproducible_artifacts_and_a_light_trigger(tmp_path):
    from click.testing import CliRunner

    from loaders.cli import main

    result = CliRunner().invoke(main, ["package", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    again = build_artifacts(tmp_path / "b")
    first = dict(line.split("=", 1) for line in (tmp_path / "a/parameters.txt").read_text().splitlines())
    assert first == again.parameters  # same code, same keys: a redeploy is a no-op
    assert first["GluePythonModules"].startswith("dbt-core==1.11.")
    # The trigger zip imports with the standard library alone (-S: no site-packages at all);
    # boto3, which the Lambda runtime provides, is imported only when the handler first runs.
    trigger_zip = tmp_path / "a" / first["TriggerCodeKey"]
    check = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import loaders.aws.trigger as t; print(t.handler.__name__)",
            str(trigger_zip),
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and check.stdout.strip() == "handler", check.stderr


def test_the_capture_mode_reaches_the_extract_job():
    """CaptureMode (cursor | binlog, the settings' choices) is the extract job's --capture."""
    from loaders.config import Capture

    template = load_template()
    parameter = template["Parameters"]["CaptureMode"]
    assert parameter["Default"] == "cursor" and tuple(parameter["AllowedValues"]) == get_args(Capture)
    extract = resources("AWS::Glue::Job")["ExtractJob"]["Properties"]["DefaultArguments"]
    assert extract["--capture"] == {"Ref": "CaptureMode"}
