"""`dwh demo` (the README's first command) runs from nothing and shows a delete converging.

The demo deletes one review in the source after the simulated hour; the cursor extract cannot
see it, so the verify finds it as an extra row, repairs it with a tombstone, and the second
verify is equal; the review is gone from staging.
"""

from __future__ import annotations

import duckdb
from click.testing import CliRunner

from loaders.cli import main


def test_demo_runs_from_nothing_and_its_verify_removes_the_deleted_review(tmp_path):
    data = tmp_path / "data"
    result = CliRunner().invoke(main, ["demo", "--scale", "0.01"], env={"DWH_DATA_DIR": str(data)})
    assert result.exit_code == 0, result.output[-3000:]
    lines = result.output.splitlines()
    (deleted,) = [x for x in lines if x.startswith("  deleted in the source: order_reviews ")]
    review_id, order_id = deleted.split()[5].split("/")
    reviews = [x for x in lines if x.startswith(("  order_reviews: DIFFERENT", "  order_reviews: equal"))]
    assert len(reviews) == 2, reviews  # before and after the repair
    assert any(x.startswith("  order_reviews: repair batch ") for x in lines)
    assert reviews[0].startswith("  order_reviews: DIFFERENT") and "extra 1 (" + review_id in reviews[0]
    assert reviews[1].startswith("  order_reviews: equal")
    assert not [x for x in lines if ": DIFFERENT" in x and not x.startswith("  order_reviews")]
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        ((staged,),) = con.execute(
            "SELECT count(*) FROM staging.stg_olist__order_reviews WHERE review_id = ? AND order_id = ?",
            [review_id, order_id],
        ).fetchall()
        ((left,),) = con.execute("SELECT count(*) FROM staging.stg_olist__order_reviews").fetchall()
    assert staged == 0
    assert left > 0
    assert (data / "dashboard.html").exists()
