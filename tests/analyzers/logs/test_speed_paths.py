"""The analyzer's fast paths (rows, ISO stamps in one call, numbered lines, block statistics,
columnar Parquet) give the same answers as the plain definitions, written out here."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq

from backline.analyzers.logs.blocks import RecordBlock
from backline.analyzers.logs.reader import open_log
from backline.analyzers.logs.records import LogRecord, read_record_rows, read_records
from backline.analyzers.logs.stats import LogStats
from backline.analyzers.logs.store import RecordWriter, query
from backline.model import Severity, TsQuality

UTC = timezone.utc


def test_iso_stamps_with_offsets_fall_back_and_stay_right(tmp_path):
    base = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    lines, want = [], []
    for i in range(60):
        t = base + timedelta(seconds=i)
        if i < 20:       # naive, comma fraction: read in UTC
            lines.append(f"{t:%Y-%m-%d %H:%M:%S},123 INFO [main] a.B: naive {i}")
            want.append(t)
        elif i < 45:     # explicit +02:00 offset (wall clock two hours ahead)
            lines.append(f"{t + timedelta(hours=2):%Y-%m-%dT%H:%M:%S}.123+02:00 INFO [main] a.B: off {i}")
            want.append(t)
        else:            # Z suffix
            lines.append(f"{t:%Y-%m-%dT%H:%M:%S}.123Z INFO [main] a.B: zulu {i}")
            want.append(t)
    p = tmp_path / "iso.log"
    p.write_text("\n".join(lines) + "\n")
    got = [r.ts for r in read_records(open_log(p))]
    assert got == want
    assert all(r.ts_quality == TsQuality.EXACT for r in read_records(open_log(p)))


def test_naive_iso_in_other_zone_is_converted(tmp_path):
    p = tmp_path / "tz.log"
    p.write_text("2024-01-15 12:00:00,500 INFO [main] a.B: x\n")
    [r] = read_records(open_log(p), tz=ZoneInfo("America/New_York"))
    assert r.ts == datetime(2024, 1, 15, 17, 0, 0, 500000, tzinfo=UTC)


def test_rows_are_records_in_field_order(tmp_path):
    p = tmp_path / "a.log"
    p.write_text("2024-01-02 03:04:05,123 ERROR [main] a.B: boom\n"
                 "java.lang.IllegalStateException: x\n\tat a.B.run(B.java:10)\n"
                 "2024-01-02 03:04:06,000 WARN [t1] a.C: slow\n")
    rows = list(read_record_rows(open_log(p)))
    recs = list(read_records(open_log(p)))
    assert [LogRecord(*r) for r in rows] == recs
    assert [(r.line, r.end_line, r.severity, r.thread, r.message) for r in recs] == [
        (1, 3, Severity.HIGH, "main", "boom"), (4, 4, Severity.MEDIUM, "t1", "slow")]
    assert recs[0].text.split("\n")[2] == "\tat a.B.run(B.java:10)"


def test_numbered_lines_crlf_and_long_lines(tmp_path):
    p = tmp_path / "c.log"
    body = [f"line {i}" for i in range(5000)]
    body[10] = "x" * 70_000
    p.write_bytes("\r\n".join(body[:3000]).encode() + b"\n" + "\n".join(body[3000:]).encode() + b"\n")
    src = open_log(p)
    got = list(src.numbered())
    assert len(got) == 5000 and [n for n, _ in got] == list(range(1, 5001))
    assert got[10][1] == "x" * src.max_line
    assert all("\r" not in t for _, t in got)
    assert got[2999] == (3000, "line 2999") and got[4999] == (5000, "line 4999")
    # lines 1-2999 end in CRLF; the CR of the over-long line 11 lies past the cut
    assert src.stats.crlf_lines == 2998 and src.stats.long_lines == 1
    assert [(ln.number, ln.text) for ln in open_log(p)] == got


def _row(line, ts, sev=Severity.INFO, text="m"):
    return (line, line, ts, TsQuality.EXACT if ts else TsQuality.NONE, sev.label, sev, "", "", "", "",
            text, text)


def test_block_stats_out_of_order_times():
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [_row(1, t0 + timedelta(seconds=30)), _row(2, t0), _row(3, None, Severity.HIGH),
            _row(4, t0 + timedelta(seconds=90), Severity.HIGH), _row(5, t0 + timedelta(seconds=10))]
    st = LogStats()
    st.add_rows(rows[:2], [7, 7])
    st.add_rows(rows[2:], [7, 8, 7])
    a, b = st.shapes[7], st.shapes[8]
    assert (a.count, b.count) == (4, 1)
    assert a.first_ts == t0 and a.last_ts == t0 + timedelta(seconds=30)
    assert [n for n, _ in a.examples] == [1, 2, 3]
    assert a.severity == Severity.HIGH
    assert st.first_ts == t0 and st.last_ts == t0 + timedelta(seconds=90)
    assert st.ts_backwards == 2 and st.with_ts == 4 and st.records == 5
    assert st.first_error.line == 3 and st.last_error.line == 4 and st.last.line == 5
    assert st.severity_counts == {Severity.INFO: 3, Severity.HIGH: 2}


def test_parquet_blocks_and_rows_in_line_order(tmp_path):
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    w = RecordWriter(tmp_path / "r.parquet", "x.log")
    w.add_block(RecordBlock.from_rows([_row(1, t0, text="a"), _row(2, None, text="b")], [1, 2]))
    w.add(ts=t0, ts_quality="exact", line=3, end_line=3, level="E", severity="high", component="c",
          pid="", thread="", host="", shape=1, message="c")
    w.add_block(RecordBlock.from_rows([_row(4, t0, Severity.CRITICAL, text="d" * 5000)], [3]))
    out = w.close({1: ("T1", "tpl one"), 2: ("T2", "tpl two")})
    # the file itself is in line order (blocks and single rows interleaved as added) ...
    assert pq.read_table(out, columns=["line"]).column("line").to_pylist() == [1, 2, 3, 4]
    # ... and the view joins each row to its template (a join does not keep row order: ORDER BY)
    cols, rows = query([out], "SELECT line, template_id, template, message, severity, ts FROM records ORDER BY line")
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert [r[1] for r in rows] == ["T1", "T2", "T1", None]       # shape 3 has no template
    assert rows[0][2] == "tpl one" and len(rows[3][3]) == 4096 and rows[3][4] == "critical"
    assert rows[1][5] is None and rows[0][5] == t0
