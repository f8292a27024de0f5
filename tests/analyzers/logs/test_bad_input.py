"""Bad input never crashes the analyzer: warnings with counts, bounded memory."""

from __future__ import annotations

import os
import resource

from backline.analyzers.base import AnalysisContext
from backline.analyzers.logs.reader import open_log
from backline.analyzers.logs.text_analyzer import analyze_text_log
from backline.model import Fact


def _facts(out):
    return {o.name: o.value for o in out if isinstance(o, Fact)}


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.log"
    p.write_bytes(b"")
    ctx = AnalysisContext()
    facts = _facts(list(analyze_text_log(p, "empty.log", ctx)))
    assert facts["log.lines"] == 0 and facts["log.records"] == 0
    assert any("empty" in w for w in ctx.warnings)


def test_binary_file_mislabelled_as_log(tmp_path):
    p = tmp_path / "image.log"
    p.write_bytes(os.urandom(300_000))
    ctx = AnalysisContext()
    facts = _facts(list(analyze_text_log(p, "image.log", ctx)))
    assert facts["log.binary_lines"] > 0
    assert any("binary" in w for w in ctx.warnings)


def test_mixed_encodings_and_backwards_time(tmp_path):
    p = tmp_path / "mixed.log"
    p.write_bytes("2024-01-01 10:00:05 ERROR caf\u00e9 utf8\n".encode()
                  + "2024-01-01 10:00:01 ERROR caf\u00e9 latin\n".encode("latin-1")
                  + b"2024-01-01 10:00:09 INFO ok\n")
    ctx = AnalysisContext()
    facts = _facts(list(analyze_text_log(p, "mixed.log", ctx)))
    assert facts["log.records"] == 3 and facts["log.ts_backwards"] == 1
    assert facts["log.encoding"] == "utf-8+latin-1"
    assert any("backwards" in w for w in ctx.warnings) and any("Latin-1" in w for w in ctx.warnings)


def test_huge_single_line_streams(tmp_path):
    p = tmp_path / "oneline.log"
    chunk = b"A" * (1 << 20)
    with open(p, "wb") as fh:
        for _ in range(200):            # a 200 MB line: memory must not follow it
            fh.write(chunk)
        fh.write(b"\n2024-01-01 10:00:00 INFO after\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ctx = AnalysisContext()
    facts = _facts(list(analyze_text_log(p, "oneline.log", ctx)))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert facts["log.lines"] == 2 and facts["log.long_lines"] == 1
    assert grown_mb < 100


def _apache(corpus) -> bytes:
    return (corpus / "logs" / "loghub-2k" / "Apache" / "Apache_2k.log").read_bytes()


def test_cr_only_line_ends_are_split_on_cr(tmp_path, corpus):
    data = _apache(corpus)
    p = tmp_path / "cr.log"
    p.write_bytes(data.replace(b"\n", b"\r"))           # tr '\n' '\r' (old Mac line ends)
    ctx = AnalysisContext()
    got = _facts(list(analyze_text_log(p, "cr.log", ctx)))
    ref = _facts(list(analyze_text_log(corpus / "logs" / "loghub-2k" / "Apache" / "Apache_2k.log",
                                       "lf.log", AnalysisContext())))
    assert got["log.records"] == ref["log.records"] == len(data.splitlines())
    assert got["log.templates"] == ref["log.templates"] and got["log.long_lines"] == 0
    assert any("CR-only" in w for w in ctx.warnings)


def test_leading_zero_run_keeps_the_first_record(tmp_path, corpus):
    data = _apache(corpus)
    first = data.split(b"\n", 1)[0].decode()
    for zeros in (4096, 300_000):                      # shorter and longer than a line may be
        p = tmp_path / f"z{zeros}.log"
        p.write_bytes(b"\x00" * zeros + data)          # copytruncate: zeros before the new writes
        ctx = AnalysisContext()
        out = list(analyze_text_log(p, "z.log", ctx))
        facts = _facts(out)
        assert facts["log.records"] == len(data.splitlines()) and facts["log.binary_lines"] == 0
        assert facts["log.long_lines"] == 0
        assert any(f"{zeros} NUL byte(s) skipped" in w for w in ctx.warnings)
        assert next(open_log(p).numbered()) == (1, first)      # the record glued to the zeros
