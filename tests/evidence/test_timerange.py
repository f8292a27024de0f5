"""Time ranges against independent oracles: tshark/capinfos (captures), the
``evtx`` package (event logs) and the loghub structured CSVs (text logs)."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from evtx import PyEvtxParser

from backline.evidence import collect
from backline.evidence.timerange import parse_line_time
from backline.model.core import ArtifactKind as K

UTC = timezone.utc


def _epoch(dt: datetime) -> Decimal:
    return Decimal((dt - datetime(1970, 1, 1, tzinfo=UTC)) // __import__("datetime").timedelta(microseconds=1)) / 10**6


def test_capture_time_ranges_match_tshark(corpus: Path, tmp_path: Path) -> None:
    intake = collect([corpus / "net"], tmp_path / "work")
    caps = [a for a in intake.artifacts if a.kind is K.CAPTURE]
    assert len(caps) == 22
    for a in caps:
        oracle = json.loads((corpus / "net" / (a.path.split("/", 1)[1] + ".oracle.json")).read_text())
        first, last = Decimal(oracle["first_ts_epoch"]), Decimal(oracle["last_ts_epoch"])
        assert a.time_start is not None and a.time_end is not None, a.path
        assert abs(_epoch(a.time_start) - first) < Decimal("0.000002"), a.path
        assert abs(_epoch(a.time_end) - last) < Decimal("0.000002"), a.path


def test_truncated_capture_is_flagged(corpus: Path, tmp_path: Path) -> None:
    (a,) = collect([corpus / "net/derived_zeek_tcp_reassembly_truncated.pcap"], tmp_path / "w").artifacts
    assert any(p.startswith("truncated") for p in a.problems)
    (whole,) = collect([corpus / "net/zeek_tcp_reassembly.pcap"], tmp_path / "w2").artifacts
    assert whole.problems == ()


def _parse_evtx_stamp(text: str) -> datetime:
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?Z", text)
    assert m, text
    y, mo, d, h, mi, s, frac = m.groups()
    return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int((frac or "0").ljust(6, "0")[:6]),
                    tzinfo=UTC)


def _evtx_package_range(path: Path) -> tuple[datetime, datetime]:
    stamps = []
    try:
        for rec in PyEvtxParser(str(path)).records():
            stamps.append(_parse_evtx_stamp(rec["timestamp"]))
    except RuntimeError:
        pass          # the package stops at a damaged chunk; compare with what it read
    return min(stamps), max(stamps)


@pytest.mark.parametrize("name", ["Application_no_crc32.evtx", "new-user-security.evtx", "security.evtx",
                                  "system.evtx", "sysmon.evtx"])
def test_evtx_time_range_matches_evtx_package(corpus: Path, tmp_path: Path, name: str) -> None:
    path = corpus / "logs/evtx" / name
    (a,) = collect([path], tmp_path / "w").artifacts
    lo, hi = _evtx_package_range(path)
    if name == "sysmon.evtx":      # package stops early on the damaged chunk: ours must cover its range
        assert a.time_start <= lo and a.time_end >= hi
    else:
        assert abs((a.time_start - lo).total_seconds()) < 1e-5
        assert abs((a.time_end - hi).total_seconds()) < 1e-5


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


CSV_TIME = {
    # system: how the structured CSV spells a row's time -> aware datetime
    "Hadoop": lambda r: datetime.strptime(f"{r['Date']} {r['Time']}", "%Y-%m-%d %H:%M:%S,%f"),
    "Apache": lambda r: datetime.strptime(r["Time"], "%a %b %d %H:%M:%S %Y"),
    "BGL": lambda r: datetime.strptime(r["Time"], "%Y-%m-%d-%H.%M.%S.%f"),
    "HDFS": lambda r: datetime.strptime(f"{int(r['Date']):06d} {int(r['Time']):06d}", "%y%m%d %H%M%S"),
}


@pytest.mark.parametrize("system", sorted(CSV_TIME))
def test_text_log_time_range_matches_structured_csv(corpus: Path, tmp_path: Path, system: str) -> None:
    d = corpus / "logs/loghub-2k" / system
    rows = _csv_rows(d / f"{system}_2k.log_structured.csv")
    want_first = CSV_TIME[system](rows[0]).replace(tzinfo=UTC)
    want_last = CSV_TIME[system](rows[-1]).replace(tzinfo=UTC)
    (a,) = collect([d / f"{system}_2k.log"], tmp_path / "w").artifacts
    assert (a.time_start, a.time_end) == (min(want_first, want_last), max(want_first, want_last))


def test_logs_without_a_year_have_no_invented_range(corpus: Path, tmp_path: Path) -> None:
    (a,) = collect([corpus / "logs/loghub-2k/OpenSSH/OpenSSH_2k.log"], tmp_path / "w").artifacts
    assert a.time_start is None and a.time_end is None


def test_parse_line_time_zones() -> None:
    assert parse_line_time("2024-05-01T10:00:00+02:00 x") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert parse_line_time("2024-05-01 10:00:00.123456789Z x") == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert parse_line_time("no time here") is None
    assert parse_line_time("2024-13-45 99:00:00 bad") is None


def test_utf16_log_time_range(tmp_path: Path) -> None:
    p = tmp_path / "app.log"
    p.write_bytes(b"\xff\xfe" + "2024-05-01 10:00:00 INFO a\r\n2024-05-02 11:00:00 INFO b\r\n".encode("utf-16-le"))
    (a,) = collect([p], tmp_path / "w").artifacts
    assert (a.time_start, a.time_end) == (datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 2, 11, tzinfo=UTC))


def test_long_capture_end_time_from_the_tail(corpus: Path, tmp_path: Path, monkeypatch) -> None:
    import backline.evidence.timerange as tr

    monkeypatch.setattr(tr, "MAX_RECORDS", 1000)          # force the tail search on a 4102-packet file
    (a,) = collect([corpus / "net/zeek_http_1000_requests_one_dropped.pcap.gz"], tmp_path / "w").artifacts
    oracle = json.loads((corpus / "net/zeek_http_1000_requests_one_dropped.pcap.gz.oracle.json").read_text())
    assert abs(_epoch(a.time_end) - Decimal(oracle["last_ts_epoch"])) < Decimal("0.000002")
    assert a.problems == ()


@pytest.mark.parametrize("walk_bytes", [0, 1 << 40])
def test_capture_fast_path_and_full_walk_agree_with_tshark(corpus: Path, tmp_path: Path, monkeypatch,
                                                           walk_bytes: int) -> None:
    """WALK_BYTES=0 forces the first-record + tail path on every capture; 1 TB forces full walks."""
    import backline.evidence.timerange as tr

    monkeypatch.setattr(tr, "WALK_BYTES", walk_bytes)
    intake = collect([corpus / "net"], tmp_path / "work")
    for a in (a for a in intake.artifacts if a.kind is K.CAPTURE and a.format != "netmon2"):
        oracle = json.loads((corpus / "net" / (a.path.split("/", 1)[1] + ".oracle.json")).read_text())
        assert abs(_epoch(a.time_start) - Decimal(oracle["first_ts_epoch"])) < Decimal("0.000002"), a.path
        assert abs(_epoch(a.time_end) - Decimal(oracle["last_ts_epoch"])) < Decimal("0.000002"), a.path
        if "truncated" in a.path:
            assert any(p.startswith("truncated") for p in a.problems)


def test_minidump_written_time_matches_minidump_dump(corpus: Path, tmp_path: Path) -> None:
    # upstream minidump_dump output: "time_date_stamp = 0x45d35f73 2007-02-14 19:13:55"
    line = next(ln for ln in (corpus / "dumps/breakpad/minidump2.dump.out").read_text().splitlines()
                if "time_date_stamp" in ln)
    want = datetime.strptime(" ".join(line.split()[-2:]), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    (a,) = collect([corpus / "dumps/breakpad/minidump2.dmp"], tmp_path / "w").artifacts
    assert a.time_start == a.time_end == want
    (bad,) = collect([corpus / "dumps/rust-minidump/invalid-range.dmp"], tmp_path / "w2").artifacts
    assert bad.time_start is None          # a broken header's stamp is not trusted


def test_truncated_gzip_log_keeps_partial_content(tmp_path: Path) -> None:
    import gzip as gz

    body = b"".join(b"2024-05-01T10:%02d:00Z INFO line %d\n" % (i % 60, i) for i in range(20000))
    data = gz.compress(body)
    p = tmp_path / "app.log.gz"
    p.write_bytes(data[: len(data) // 2])
    (a,) = collect([p], tmp_path / "w").artifacts
    assert a.kind is K.TEXT_LOG and a.compression == "gzip"
    assert 0 < a.size < len(body)
    assert any(x.startswith("truncated") for x in a.problems)
