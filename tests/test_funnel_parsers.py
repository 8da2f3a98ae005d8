"""The converter's two parsers agree (issue 17, kind 4): the fast one (pyarrow's CSV reader) and
the fallback (line by line, Python's csv module) give the same rows for every valid row, with
RFC 4180 quoting, embedded commas and quotes, a byte-order mark or none, CRLF or LF line ends in
any mix, empty lines anywhere (ignored: not rows, not rejects) and a final line break or none.

Hypothesis generates the files; each is converted twice, once as the converter does it and once
with the fast parser switched off, and both lakes must hold exactly the generated rows."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from loaders.config import PROJECT_DIR, Settings
from loaders.declarations import funnel_declaration
from loaders.funnel import convert_file, land_files, parse
from loaders.store import ObjectStore

DECLARATION = funnel_declaration(PROJECT_DIR)
EVENT_TYPES = DECLARATION.column("event_type").accepted_values

# Text without line breaks: letters, digits, space, comma, quote, accents, an emoji, a tab.
TEXT = st.text(alphabet=st.sampled_from(list("ab Z09,\"'é€😀\t;|")), min_size=1, max_size=12)
STAMP = st.datetimes(min_value=datetime(2016, 1, 1), max_value=datetime(2019, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0)
)


@st.composite
def rows(draw) -> list[tuple]:
    """Valid events: (session_id, timestamp, event_type, userid, product_id, category_id or '')."""
    n = draw(st.integers(min_value=1, max_value=25))
    return [
        (
            f"s{i:04d}" + draw(TEXT),
            draw(STAMP),
            draw(st.sampled_from(EVENT_TYPES)),
            draw(TEXT),
            draw(TEXT),
            draw(st.one_of(st.just(""), TEXT)),
        )
        for i in range(n)
    ]


def field(value: str, quote_anyway: bool) -> str:
    if quote_anyway or any(c in value for c in ',"'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def files(draw) -> tuple[list[tuple], bytes]:
    """Generated rows and a file that holds them, written in one of the ways vendors write."""
    events = draw(rows())
    bom = draw(st.booleans())
    lines = [",".join(DECLARATION.header)]
    for session, stamp, event, user, product, category in events:
        values = [session, stamp.strftime("%m/%d/%Y %I:%M %p"), event, user, product, category]
        lines.append(",".join(field(v, draw(st.booleans())) for v in values))
    out = []
    for number, line in enumerate(lines):
        if number and draw(st.integers(0, 9)) == 0:  # an empty line before this row
            out.append(draw(st.sampled_from(["\n", "\r\n"])))
        out.append(line + draw(st.sampled_from(["\n", "\r\n"])))
    if draw(st.booleans()):
        out.append(draw(st.sampled_from(["", "\n", "\r\n", "\n\n", "\r\n\r\n"])))  # empty lines at the end
    text = "".join(out)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")  # no line break after the last row
    return events, (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def convert(content: bytes, block_bytes: int, fast: bool) -> tuple[list[tuple], int, dict]:
    """The lake's rows in file order, rows read and rejects after converting `content`."""
    original = parse.read_fast
    if not fast:
        parse.read_fast = lambda *args: None  # the fallback for every block
    try:
        with tempfile.TemporaryDirectory() as folder:
            s = Settings(data_dir=Path(folder) / "data", funnel_block_bytes=block_bytes)
            store = ObjectStore(s.store_url, s)
            path = Path(folder) / "generated_funnel.csv"
            path.write_bytes(content)
            land_files(store, [path])
            report = convert_file(s, store, "generated_funnel.csv")
            got = []
            for output in report.outputs:
                got += pq.read_table(store.full(output)).to_pylist()
    finally:
        parse.read_fast = original
    got.sort(key=lambda r: r["session_id"][:5])  # the lake is by month: back to file order
    events = [
        (
            r["session_id"],
            r["event_timestamp"],
            r["event_type"],
            r["userid"],
            r["product_id"],
            r["category_id"] or "",
        )
        for r in got
    ]
    return events, report.rows_read, report.rejects


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=files(), block_bytes=st.sampled_from([64, 300, 1 << 20]))
def test_fast_and_fallback_parsers_read_every_valid_row_alike(generated, block_bytes):
    events, content = generated
    fast = convert(content, block_bytes, fast=True)
    fallback = convert(content, block_bytes, fast=False)
    assert fast == fallback == (events, len(events), {})


def test_the_fast_parser_takes_a_block_of_quoted_values():
    """The property above compares the two paths only if the fast one is taken for clean blocks."""
    block = b'a,"b,c",view,"u""1",p,\r\nd,e,purchase,u,p,"x"\n'
    table = parse.read_fast(block, 2, parse.file_format(DECLARATION))
    assert table is not None and table.column("event_timestamp").to_pylist() == ["b,c", "e"]
    assert table.column("userid").to_pylist() == ['u"1', "u"]
    assert parse.read_fast(block + b"\r\n", 3, parse.file_format(DECLARATION)) is None  # an empty line: fallback
