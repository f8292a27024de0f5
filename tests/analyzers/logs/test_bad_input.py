"""Bad input never crashes the analyzer: warnings with counts, bounded memory."""

from __future__ import annotations

import os
import resource

from backline.analyzers.base import AnalysisContext
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
