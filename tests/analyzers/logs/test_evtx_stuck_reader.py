"""A damaged chunk on which the native EVTX reader never returns (found by benchmarks/fuzz.py evtx).

The file below was minimised from the fuzzer's input to 24 non-zero bytes: a file header
magic, one chunk whose string/template offsets send evtx 0.14's reader into an endless loop
(the call holds the GIL, so no Python-side timeout can stop it).  The reader now runs one
chunk at a time in a worker process: the stuck chunk is given up after ``chunk_seconds``,
counted as a bad chunk, and the chunks after it are still read.  (Should a later evtx release
read this chunk, the first test says so: its problem text would no longer be a time-out.)
"""

from __future__ import annotations

import subprocess
import sys
import time

from backline.analyzers.base import AnalysisContext
from backline.analyzers.logs.evtx_analyzer import analyze_evtx, read_evtx
from backline.model import Fact

#: offset -> bytes of the minimised file (header + one 64 KiB chunk, zeros elsewhere)
STUCK = {0: b"ElfFile", 4096: b"ElfChnk", 4352: b"M|\x00\x00\x82\x06", 25954: b"\x01\x00\x00\x00\x98",
         35913: b"M|\x00\x00aU"}


def stuck_file(path, extra_chunk: bytes = b""):
    data = bytearray(4096 + 65536)
    for off, b in STUCK.items():
        data[off:off + len(b)] = b
    path.write_bytes(bytes(data) + extra_chunk)
    return path


def good_chunk(corpus) -> bytes:
    raw = (corpus / "logs" / "evtx" / "new-user-security.evtx").read_bytes()
    return raw[4096:4096 + 65536]


def test_the_native_reader_does_not_return_on_this_chunk(tmp_path):
    path = stuck_file(tmp_path / "stuck.evtx")
    code = "import evtx, sys; [None for _ in evtx.PyEvtxParser(sys.argv[1]).records_json()]"
    try:
        subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=5)
        hung = False
    except subprocess.TimeoutExpired:
        hung = True
    assert hung, "evtx now returns on this chunk: the time-out below is no longer exercised"


def test_a_stuck_chunk_is_skipped_and_the_next_chunk_is_read(tmp_path, corpus):
    path = stuck_file(tmp_path / "stuck.evtx", good_chunk(corpus))
    problems: list[str] = []
    started = time.monotonic()
    records = list(read_evtx(path, "stuck.evtx", problems, chunk_seconds=1.5))
    took = time.monotonic() - started
    assert len(records) == 4                       # the good chunk's records, after the stuck one
    assert len(problems) == 1 and problems[0].startswith("chunk number 0: the reader did not finish within 1.5 s")
    assert took < 30


def test_the_analyzer_reports_the_stuck_chunk_as_a_bad_chunk(tmp_path, corpus):
    from backline.analyzers.logs import evtx_analyzer

    path = stuck_file(tmp_path / "stuck.evtx", good_chunk(corpus))
    ctx = AnalysisContext()
    saved = evtx_analyzer.CHUNK_SECONDS
    evtx_analyzer.CHUNK_SECONDS = 1.5
    try:
        facts = {o.name: o.value for o in analyze_evtx(path, "stuck.evtx", ctx) if isinstance(o, Fact)}
    finally:
        evtx_analyzer.CHUNK_SECONDS = saved
    assert facts["evtx.bad_chunks"] == 1 and facts["evtx.records"] == 4
    assert any("1 bad chunk(s)" in w for w in ctx.warnings)
