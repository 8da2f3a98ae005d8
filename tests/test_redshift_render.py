"""The whole dbt project as dbt-redshift would send it (tests/redshift_render.py), checked against
Redshift's rules: every model, seed and the Spectrum DDL, on an empty warehouse and on the next run."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from loaders.config import PROJECT_DIR, Settings

from .redshift_render import (
    Rendering,
    function_problems,
    key_problems,
    parse_problems,
    problems,
    render_project,
    view_problems,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Rendering, Rendering]:
    return render_project(Settings(data_dir=tmp_path_factory.mktemp("redshift") / "data"))


def _ddl(rendering: Rendering, node_id: str, kind: str) -> list[str]:
    pattern = re.compile(rf"^\s*(/\*.*?\*/)?\s*{kind}\b", re.S | re.I)
    return [sql for sql in rendering.of(node_id) if pattern.match(sql)]


def test_every_model_is_rendered_on_both_runs(rendered):
    first, second = rendered
    assert len(first.models) >= 27
    for node_id, node in first.models.items():
        materialized = node["config"]["materialized"]
        kind = "create view" if materialized == "view" else r"create\s+table"
        assert _ddl(first, node_id, kind), f"{node_id}: no {kind} on an empty warehouse"
        if materialized == "incremental":  # the next run: the project's delete+insert strategy
            assert _ddl(second, node_id, "delete from") and _ddl(second, node_id, "insert into"), node_id
        elif materialized == "table":  # the swap: rename the old one away, drop it with CASCADE
            drops = _ddl(second, node_id, "drop table")
            assert any("__dbt_backup" in d and "cascade" in d for d in drops), node_id
    spectrum = [sql for node, sql in first.statements if node == "" and "external" in sql]
    assert any("create external schema" in s for s in spectrum) and any("create external table" in s for s in spectrum)


def test_the_rendering_meets_every_redshift_rule(rendered):
    first, second = rendered
    assert problems(first) + problems(second) == []


def test_spectrum_view_late_binding_case(rendered):
    """../shared/cases/spectrum-view-late-binding: stg_funnel__events reads the external table."""
    first, _ = rendered
    (view,) = _ddl(first, "model.olist_dwh.stg_funnel__events", "create view")
    assert 'from "dev"."spectrum"."funnel_events"' in view
    assert re.search(r"\)\s*with no schema binding;\s*$", view)
    for node_id in [n for n in first.models if ".bi_" in n]:
        (bi,) = _ddl(first, node_id, "create view")
        assert bi.rstrip().endswith("with no schema binding;"), node_id


def test_a_planted_bound_view_over_the_external_table_fails_the_check(tmp_path: Path):
    """Negative control: a real model, rendered by dbt-redshift, that Redshift would refuse."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns(".venv", "target", "data", ".git", "logs"))
    (project / "models" / "staging" / "funnel" / "stg_planted.sql").write_text(
        "{{ config(bind=true) }}\nselect session_id from {{ source('funnel', 'funnel_events') }}\n"
    )
    s = Settings(data_dir=tmp_path / "data", project_dir=project)
    first, _ = render_project(s, select="stg_planted")
    found = problems(first, parse=False)
    assert found == [
        "model.olist_dwh.stg_planted: view over the external table(s) in ['spectrum'] is not late-binding: "
        "Redshift refuses it (dbt config bind: false renders WITH NO SCHEMA BINDING)"
    ]


def test_each_rule_can_fail():
    external = {"spectrum"}
    assert view_problems("m", 'create view "d"."s"."v" as (select * from "d"."spectrum"."t") ;', external)
    assert view_problems("m", 'create view "d"."s"."v" as (select * from "d"."marts"."t") ;', external)
    assert not view_problems(
        "m", 'create view "d"."s"."v" as (select 1 from "d"."marts"."t") with no schema binding;', external
    )
    unqualified = (
        'create view "d"."s"."v" as (with a as (select extract(dow from x) from "d"."marts"."t") '
        "select * from a join u on 1=1) with no schema binding;"
    )
    assert view_problems("m", unqualified, external) == [
        "m: late-binding view reads u without a schema: Redshift refuses it"
    ]
    assert function_problems("m", "select string_agg(x, ',') from t") == ["m: string_agg() does not exist on Redshift"]
    assert function_problems("m", "select distinct on (a) a from t")
    assert function_problems("m", "select a, count(*) from t group by all") == [
        "m: GROUP BY ALL / ORDER BY ALL (DuckDB) is not supported on Redshift"
    ]
    assert not function_problems("m", "select listagg(x, ',') from t")
    assert function_problems("m", 'create index if not exists "i" on "d"."s"."t" (order_id)') == [
        "m: CREATE INDEX (Redshift has no indexes: macros/pg_indexes.sql) is not supported on Redshift"
    ]
    ddl = 'create table "d"."s"."t" diststyle key distkey (order_id) compound sortkey(purchased_at, gone) as (select 1)'
    assert key_problems("m", ddl, {"order_id", "purchased_at"}) == [
        "m: DISTKEY/SORTKEY column 'gone' is not a column of the model"
    ]
    assert parse_problems("m", "create view v as (select 1) with no schema binding;") == []
    assert parse_problems("m", "create table t diststyle sortkey as select")
