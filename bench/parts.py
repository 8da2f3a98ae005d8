"""Measure the COPY parts a historical batch of `order_items` gets for a cluster's slices (issue 15).

    .venv/bin/python bench/parts.py --scales 1 10 --slices 2 4 16

For each scale: the generated Olist CSVs (cached under bench/results/csv/, shared with
bench/extract.py) are loaded into an SQLite source; then one historical extract of the table
per slice count, with DWH_REDSHIFT_SLICES set and the default target part size
(DWH_COPY_PART_BYTES, 256 MiB), plus one without slices (the DWH_PART_ROWS rule) as the
baseline. Reported per run: part count, whether it is a multiple of the slices, compressed part
sizes (min / median / max MB), rows per part, total and seconds. The rule is
loaders.extract.parts.plan_parts. Results go to stdout and bench/results/parts.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / "bench" / "results"
MB = 1024 * 1024

for path in (PROJECT_DIR, PROJECT_DIR / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def measure(settings, table) -> dict:
    """One historical extract of `table` with `settings`; its parts' count and sizes."""
    from loaders.extract import extract_table
    from loaders.sources import open_source
    from loaders.store import ObjectStore

    store = ObjectStore(settings.store_url, settings)
    with open_source(settings.source_url) as engine:
        started = time.perf_counter()
        report = extract_table(settings, engine, store, table, "historical")
        seconds = time.perf_counter() - started
    sizes = [p.bytes / MB for p in report.parts]
    rows = [p.rows for p in report.parts]
    slices = settings.redshift_slices
    return {
        "slices": slices,
        "parts": len(report.parts),
        "multiple_of_slices": bool(slices) and len(report.parts) % slices == 0,
        "min_mb": round(min(sizes), 3),
        "median_mb": round(statistics.median(sizes), 3),
        "max_mb": round(max(sizes), 3),
        "total_mb": round(sum(sizes), 3),
        "rows": report.rows,
        "min_rows": min(rows),
        "max_rows": max(rows),
        "seconds": round(seconds, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", nargs="+", type=float, default=[1.0, 10.0])
    parser.add_argument("--slices", nargs="+", type=int, default=[2, 4, 16])
    parser.add_argument("--part-bytes", type=int, default=None, help="DWH_COPY_PART_BYTES (default: the setting's)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, default=RESULTS / "parts.json")
    args = parser.parse_args()

    from extract import csv_folder  # bench/extract.py: the cached generated CSVs
    from loaders.config import Settings
    from loaders.declarations import declared_tables
    from loaders.sources import open_source
    from loaders.sources.bootstrap import load_folder

    table = declared_tables(PROJECT_DIR)["order_items"]
    results = []
    for scale in args.scales:
        folder = csv_folder(scale, args.seed, [table])
        with tempfile.TemporaryDirectory(prefix="dwh-parts-") as tmp:
            base = Settings(data_dir=Path(tmp) / "data")
            base.data_dir.mkdir(parents=True)
            with open_source(base.source_url) as db:
                load_folder(db, [table], folder)
            extra = {"copy_part_bytes": args.part_bytes} if args.part_bytes else {}
            for slices in [0, *args.slices]:
                run = base.with_(redshift_slices=slices, store_url=str(Path(tmp) / f"store-{slices}"), **extra)
                row = {"scale": scale, "target_mb": round(run.copy_part_bytes / MB), **measure(run, table)}
                results.append(row)
                print(
                    f"scale {scale:g} slices {slices or '-':>2}: {row['parts']:>3} parts"
                    f"{' (multiple)' if row['multiple_of_slices'] else ''}, "
                    f"{row['min_mb']:.2f} / {row['median_mb']:.2f} / {row['max_mb']:.2f} MB, "
                    f"{row['min_rows']}-{row['max_rows']} rows each, {row['total_mb']:.1f} MB "
                    f"({row['rows']} rows) in {row['seconds']:.1f}s",
                    flush=True,
                )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"results in {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
