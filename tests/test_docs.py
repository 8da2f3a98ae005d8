"""dbt docs: the catalog generates, and every model, source and column in it is described."""

from __future__ import annotations

import json

import pytest

from loaders import pipeline

from .helpers import extract_and_load, fill_source, quiet

pytestmark = pytest.mark.slow


def test_every_model_and_column_is_described(settings, olist_csv):
    fill_source(settings, olist_csv)
    extract_and_load(settings)
    pipeline.build(settings, quiet(), check_freshness=False)
    page = pipeline.docs(settings, quiet())
    assert page.exists() and page.stat().st_size > 100_000
    target = page.parent
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    described = {**manifest["nodes"], **manifest["sources"]}
    missing = []
    for unique_id, entry in {**catalog["nodes"], **catalog["sources"]}.items():
        if unique_id.startswith("test."):
            continue  # stored test failures (schema audit)
        node = described[unique_id]
        if not node.get("description", "").strip():
            missing.append(unique_id)
        documented = {name.lower(): c.get("description", "").strip() for name, c in node.get("columns", {}).items()}
        for column in entry["columns"]:
            if not documented.get(column.lower()):
                missing.append(f"{unique_id}.{column}")
    assert len(catalog["nodes"]) >= 24
    assert missing == []
    exposures = manifest["exposures"]
    assert {e["type"] for e in exposures.values()} == {"dashboard"} and len(exposures) == 4
    assert "source.olist_dwh.pipeline._run_history" in catalog["sources"]  # the run history is documented


def test_every_setting_is_in_the_readme_configuration_table():
    """`dwh settings` lists every Settings field as DWH_<NAME>; the README's table must name each
    (grouped rows such as `DWH_PG_HOST`, `_PORT`, ... count for their suffixes)."""
    import re
    from dataclasses import fields
    from pathlib import Path

    from loaders.config import Settings

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    documented: set[str] = set()
    for row in section.splitlines():
        if not row.startswith("| `DWH_"):
            continue
        names = re.findall(r"`(DWH_[A-Z0-9_]+|_[A-Z0-9_]+)`", row.split("|")[1])
        prefix = names[0].rsplit("_", 1)[0]
        documented.update(n if n.startswith("DWH_") else prefix + n for n in names)
    missing = sorted(f"DWH_{f.name.upper()}" for f in fields(Settings) if f"DWH_{f.name.upper()}" not in documented)
    assert not missing, f"settings missing from README's Configuration table: {missing}"
