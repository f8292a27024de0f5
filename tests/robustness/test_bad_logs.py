"""Text logs that are not what they seem: mixed encodings, zero-filled ranges, time going
backwards, absurd timestamps, binary files named ``.log``.  Built from a real loghub log."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from . import mutate as m

LOG_REL = "logs/loghub-2k/Apache/Apache_2k.log"


@pytest.fixture(scope="module")
def lines(corpus) -> list[bytes]:
    return (corpus / LOG_REL).read_bytes().splitlines(keepends=True)


def _one(doc) -> dict:
    (art,) = doc["artifacts"]
    return art


def _ran(art) -> dict:
    (run,) = [r for r in art["runs"] if r["analyzer"] == "logs.text"]
    assert run["status"] == "ok", run
    return run


def test_mixed_encodings_are_read_not_dropped(tmp_path, lines):
    """UTF-8 with cp1252 words and whole UTF-16 lines mixed in.  Regression: the NUL bytes
    of the UTF-16 lines made intake call the file binary, and nothing was analysed."""
    out = []
    for i, line in enumerate(lines):
        if i % 7 == 0:
            out.append(line.replace(b"notice", "notice café".encode("cp1252")))
        elif i % 11 == 0:
            out.append("2005-12-04 ERROR ünïcödé\n".encode("utf-16-le"))
        else:
            out.append(line)
    p = tmp_path / "mixed.log"
    p.write_bytes(b"".join(out))
    art = _one(m.run_analyze(p).doc)
    assert art["kind"] == "text_log"
    assert any("NUL bytes" in x for x in art["problems"])
    run = _ran(art)
    assert run["events"] > 0 and art["findings"] > 0
    assert any("binary line" in w or "not UTF-8" in w for w in run["warnings"])


def test_log_after_copytruncate_zero_fill(tmp_path, lines):
    """Regression: a log that starts with 100 kB of zero bytes was classified as binary."""
    p = tmp_path / "rotated.log"
    p.write_bytes(bytes(100_000) + b"".join(lines))
    art = _one(m.run_analyze(p).doc)
    assert art["kind"] == "text_log"
    assert any("starts with 100000 zero bytes" in x for x in art["problems"])
    assert _ran(art)["events"] > 0


def test_only_zeros(tmp_path):
    p = tmp_path / "zeros.log"
    p.write_bytes(bytes(300_000))
    art = _one(m.run_analyze(p).doc)
    assert art["kind"] == "unknown" and any("only zero bytes" in x for x in art["problems"])
    assert all(r["status"] == "skipped" and "zero bytes" in r["reason"] for r in art["runs"])


def test_zeroed_range_in_the_middle(tmp_path, lines):
    data = bytearray(b"".join(lines))
    data[50_000:90_000] = bytes(40_000)
    p = tmp_path / "hole.log"
    p.write_bytes(bytes(data))
    art = _one(m.run_analyze(p).doc)
    assert art["kind"] == "text_log"
    run = _ran(art)
    assert any("binary line" in w for w in run["warnings"])
    assert run["events"] > 0


def test_time_going_backwards_is_counted(tmp_path, lines):
    p = tmp_path / "reversed.log"
    p.write_bytes(b"".join(reversed(lines)))
    art = _one(m.run_analyze(p).doc)
    run = _ran(art)
    assert any("backwards" in w and "reversed.log" in w for w in run["warnings"])
    assert art["time_start"] and art["time_end"] and art["time_start"] <= art["time_end"]


def test_clock_jumps_back_a_year(tmp_path):
    t = datetime(2024, 1, 1, 12, 0, 0)
    rows = []
    for i in range(3000):
        t += timedelta(seconds=(1, 2, 5, -3600, -86400 * 400)[i * 7 % 5])
        rows.append(f"{t.isoformat()}Z {'ERROR' if i % 50 == 0 else 'INFO'} worker {i % 7} step {i}\n")
    p = tmp_path / "jumps.log"
    p.write_text("".join(rows))
    art = _one(m.run_analyze(p).doc)
    assert any("backwards" in w for w in _ran(art)["warnings"])


def test_binary_named_log_inside_a_bundle(tmp_path, corpus):
    """A capture and a minidump renamed to .log: content decides the kind."""
    import zipfile
    p = tmp_path / "renamed.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("capture.log", (corpus / "net/tcpdump_tcp_handshake_nano.pcap").read_bytes())
        zf.writestr("app.log", (corpus / "dumps/breakpad/null_read_av.dmp").read_bytes())
        zf.writestr("noise.log", bytes(range(256)) * 64)
    doc = m.run_analyze(p).doc
    kinds = {a["path"]: a for a in doc["artifacts"]}
    assert kinds["renamed.zip!/capture.log"]["kind"] == "capture"
    assert kinds["renamed.zip!/app.log"]["kind"] == "minidump"
    assert any(f["code"] == "DUMP.CRASH" and f["artifact"].endswith("app.log") for f in doc["findings"])
    noise = kinds["renamed.zip!/noise.log"]
    assert noise["kind"] == "unknown" and any("binary content" in x for x in noise["problems"])


def test_absurd_timestamps(tmp_path):
    """Year 0, year 9999, Feb 30, 25:61:61.  (The year-9999 stamp overflowed the report
    timeline before wip/report f85c29f.)"""
    p = tmp_path / "absurd.log"
    p.write_text("0000-00-00T00:00:00Z ERROR zero\n9999-12-31T23:59:59Z ERROR max\n"
                 "1970-01-01T00:00:00Z INFO epoch\n2024-02-30T25:61:61Z ERROR invalid\n")
    out = m.run_analyze(p)
    assert out.code == 0
    art = _one(out.doc)
    assert art["kind"] == "text_log" and _ran(art)["events"] > 0
