"""Funnel (clickstream) files in the analytics vendor's real format, for demos, tests and benchmarks.

One CSV per year, `<year>_funnel.csv`, exactly as docs/data.md describes: CRLF line endings, the
header `session_id,event_timestamp,event_type,userid,product_id,category_id`, 36-character
session ids, `MM/DD/YYYY hh:mm AM|PM` timestamps (12-hour clock), the four event types, users
that are `customer_id`s and products that are `product_id`s of the Olist source (read from its
CSV files, so the joins mean something), and category ids that are sometimes empty and do not
always match the product's own category. Written streaming: memory does not grow with the size.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from loaders.config import PROJECT_DIR
from loaders.declarations import funnel_declaration

_DECLARATION = funnel_declaration(PROJECT_DIR)  # models/staging/funnel/_funnel__sources.yml
FUNNEL_HEADER = _DECLARATION.header
EVENT_TYPES = _DECLARATION.column("event_type").accepted_values

_EVENT_WEIGHTS = (0.62, 0.2, 0.08, 0.1)
ROWS_PER_FILE_AT_SCALE_1 = 10_000  # the seed design's sample: about 10k rows per yearly file
MAX_USERS = 200_000  # users and products are sampled from the source up to this many


def _sample_column(path: Path, column: int, limit: int, rng: random.Random, extra: int | None = None):
    """Reservoir sample of (column, extra column) values from a CSV file."""
    sample: list = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for seen, row in enumerate(reader):
            value = (row[column], row[extra]) if extra is not None else row[column]
            if len(sample) < limit:
                sample.append(value)
            else:
                j = rng.randrange(seen + 1)
                if j < limit:
                    sample[j] = value
    if not sample:
        raise ValueError(f"{path.name} has no rows to draw ids from")
    return sample


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%m/%d/%Y %I:%M %p")


def generate_funnel(
    out_dir: str | os.PathLike,
    olist_csv_dir: str | os.PathLike,
    scale: float = 1.0,
    seed: int = 42,
    years: tuple[int, ...] = (2016, 2017, 2018),
    rows_per_file: int | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Write one funnel file per year into out_dir; return {file name: rows written}.

    `rows_per_file` overrides the scale (10,000 rows per file at scale 1; about 140 bytes a row,
    so 7.5M rows make a 1 GB file).
    """
    out, source = Path(out_dir), Path(olist_csv_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    users = _sample_column(source / "olist_customers_dataset.csv", 0, MAX_USERS, rng)
    products = _sample_column(source / "olist_products_dataset.csv", 0, MAX_USERS, rng, extra=1)
    categories = sorted({c for _, c in products if c})
    n = rows_per_file if rows_per_file is not None else max(1, int(ROWS_PER_FILE_AT_SCALE_1 * scale))
    counts = {}
    for year in years:
        name = f"{year}_funnel.csv"
        start = datetime(year, 1, 1)
        minutes = int((datetime(year + 1, 1, 1) - start).total_seconds() // 60)
        tmp = out / (name + ".tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(",".join(FUNNEL_HEADER) + "\r\n")
            lines = []
            for i in range(n):
                product, category = rng.choice(products)
                roll = rng.random()
                if roll < 0.12:
                    category = ""  # empty category id
                elif roll < 0.2 and categories:
                    category = rng.choice(categories)  # not the product's own category
                session = (
                    f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-11ea-"
                    f"{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}"
                )
                moment = start + timedelta(minutes=rng.randrange(minutes))
                event = rng.choices(EVENT_TYPES, _EVENT_WEIGHTS)[0]
                lines.append(f"{session},{_timestamp(moment)},{event},{rng.choice(users)},{product},{category}\r\n")
                if len(lines) == 10_000:
                    handle.write("".join(lines))
                    lines.clear()
                    if progress and (i + 1) % 100_000 == 0:
                        progress(name, i + 1)
            handle.write("".join(lines))
        os.replace(tmp, out / name)
        counts[name] = n
        if progress:
            progress(name, n)
    return counts
