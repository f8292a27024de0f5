"""Bad input: truncated, zero-filled, self-referencing or absurd directories, corrupt records,
random damage.  Always a FormatError naming the file and place, or a partial report that says
what is missing; never another exception, a hang or unbounded memory."""

from __future__ import annotations

import random
import struct
import time

import pytest

from backline.analyzers.dumps.analysis import analyze_crash
from backline.analyzers.dumps.minidump.parser import parse_minidump
from backline.analyzers.dumps.minidump.process import report_from_minidump
from backline.analyzers.dumps.symbols import SymbolStore
from backline.errors import FormatError


@pytest.fixture(scope="module")
def dump2(corpus) -> bytes:
    return (corpus / "dumps/breakpad/minidump2.dmp").read_bytes()


def _run(data: bytes, name: str = "bad.dmp"):
    md = parse_minidump(data, name)
    return analyze_crash(report_from_minidump(md, SymbolStore(())))


def test_zero_filled_file_is_rejected():
    with pytest.raises(FormatError, match="no MDMP signature") as err:
        _run(bytes(4096), "zeros.dmp")
    assert str(err.value).startswith("zeros.dmp offset:0x0")


def test_absurd_stream_count(dump2):
    data = bytearray(dump2)
    struct.pack_into("<I", data, 8, 0xFFFFFFFF)
    with pytest.raises(FormatError, match="stream count 4294967295 is absurd"):
        _run(bytes(data))


def test_directory_outside_the_file(dump2):
    data = bytearray(dump2)
    struct.pack_into("<I", data, 12, len(data) - 4)
    with pytest.raises(FormatError, match="stream directory"):
        _run(bytes(data))


def _dir(data: bytes) -> list[tuple[int, int, int, int]]:
    n, rva = struct.unpack_from("<II", data, 8)
    return [(i, *struct.unpack_from("<III", data, rva + 12 * i)) for i in range(n)]


def test_absurd_record_count_in_thread_list(dump2):
    data = bytearray(dump2)
    i, st, size, rva = next(e for e in _dir(dump2) if e[1] == 3)
    struct.pack_into("<I", data, rva, 0x7FFFFFFF)
    with pytest.raises(FormatError, match="thread list: 2147483647 records"):
        _run(bytes(data))


def test_self_referencing_stream_directory(dump2):
    """Every stream points at the directory itself: no crash, a clear error or a partial report."""
    data = bytearray(dump2)
    n, dir_rva = struct.unpack_from("<II", data, 8)
    for i, st, size, rva in _dir(dump2):
        struct.pack_into("<III", data, dir_rva + 12 * i, st, 12 * n, dir_rva)
    try:
        rep = _run(bytes(data))
    except FormatError as exc:
        assert "bad.dmp" in str(exc)
    else:
        assert rep.warnings


@pytest.mark.parametrize("fraction", [0.002, 0.01, 0.05, 0.2, 0.3, 0.5, 0.8, 0.95, 0.999])
def test_truncated_dump_gives_partial_report_or_clear_error(dump2, fraction):
    try:
        rep = _run(dump2[:int(len(dump2) * fraction)])
    except FormatError as exc:
        assert "bad.dmp" in str(exc)
        return
    assert any("truncated" in w or "outside the file" in w or "missing" in w for w in rep.warnings)


def test_truncated_dump_keeps_exception(dump2):
    rep = _run(dump2[:5000])
    assert rep.exception is not None and rep.exception.type == "EXCEPTION_ACCESS_VIOLATION_WRITE"
    assert any("truncated" in w for w in rep.warnings)


def test_thread_without_stack_memory_reports_it(dump2):
    data = bytearray(dump2)
    i, st, size, rva = next(e for e in _dir(dump2) if e[1] == 3)
    n = struct.unpack_from("<I", data, rva)[0]
    for k in range(n):
        struct.pack_into("<QII", data, rva + 4 + 48 * k + 24, 0, 0, 0)     # stack descriptor zeroed
    # drop the memory list too, so no stack bytes are found anywhere
    for j, st2, size2, rva2 in _dir(dump2):
        if st2 == 5:
            struct.pack_into("<I", data, rva2, 0)
    rep = _run(bytes(data))
    assert rep.crashed_thread is not None and len(rep.crashed_thread.frames) == 1
    assert any("stack memory missing" in w for w in rep.warnings)


@pytest.mark.parametrize("name", ["breakpad/minidump2.dmp", "rust-minidump/linux-mini.dmp",
                                  "breakpad/tiny-exe-fastfail.dmp"])
def test_random_damage_never_crashes(corpus, name):
    data = (corpus / "dumps" / name).read_bytes()
    rng = random.Random(1234)
    for _ in range(60):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 40)):
            pos = rng.randrange(0, min(len(buf), 4096))     # headers, directory and records
            buf[pos] = rng.randrange(256)
        t = time.perf_counter()
        try:
            _run(bytes(buf))
        except FormatError:
            pass
        assert time.perf_counter() - t < 5
