"""Dumps written by the test writer: a futex deadlock found through the whole minidump path,
and a dump with thousands of threads analysed in bounded time."""

from __future__ import annotations

import struct
import time

from backline.analyzers.base import AnalysisContext
from backline.analyzers.dumps.minidump.analyzer import MinidumpAnalyzer
from backline.analyzers.dumps.minidump.parser import parse_minidump
from backline.analyzers.dumps.minidump.process import report_from_minidump
from backline.analyzers.dumps.symbols import SymbolStore
from backline.model import Artifact, ArtifactKind, Finding

from .mdwriter import DumpSpec, FakeModule, FakeThread, build

LIBC = FakeModule("/lib/x86_64-linux-gnu/libc.so.6", 0x7F0000000000, 0x200000, bytes(range(1, 17)))
APP = FakeModule("/opt/app/server", 0x400000, 0x10000, bytes(range(2, 18)))


def _symbols(tmp_path):
    from backline.analyzers.dumps.minidump.parser import _fmt_guid

    for m, text in ((LIBC, "FUNC 1000 100 0 __lll_lock_wait\nFUNC 2000 100 0 __pthread_clockjoin_ex\n"),
                    (APP, "FUNC 100 100 0 worker_ab\nFUNC 200 100 0 worker_ba\nFUNC 300 100 0 main\n")):
        name = m.name.rsplit("/", 1)[-1]
        debug_id = _fmt_guid(m.build_id) + "0"
        p = tmp_path / name / debug_id / f"{name}.sym"
        p.parent.mkdir(parents=True)
        p.write_text(f"MODULE Linux x86_64 {debug_id} {name}\n{text}")
    return tmp_path


def _waiter(tid, rip, futex, ret, stack_base):
    stack = struct.pack("<4Q", ret, 0, 0, 0)
    return FakeThread(tid, {"rip": rip, "rsp": stack_base, "rbp": 0, "rdi": futex}, stack_base, stack)


def test_futex_deadlock_through_the_minidump_path(tmp_path):
    lock_a, lock_b = 0x601000, 0x601040
    mutexes = bytearray(0x80)
    struct.pack_into("<iI i", mutexes, 0, 2, 0, 1002)          # lock_a: __lock=2, __owner = 1002
    struct.pack_into("<iI i", mutexes, 0x40, 2, 0, 1001)       # lock_b: owner 1001
    spec = DumpSpec(
        threads=[
            _waiter(1000, LIBC.base + 0x2010, 0, APP.base + 0x310, 0x7FFD00000000),
            _waiter(1001, LIBC.base + 0x1010, lock_a, APP.base + 0x110, 0x7FFD00100000),
            _waiter(1002, LIBC.base + 0x1010, lock_b, APP.base + 0x210, 0x7FFD00200000),
        ],
        modules=[APP, LIBC], memory=[(0x601000, bytes(mutexes))])
    data = build(spec)
    path = tmp_path / "hang.dmp"
    path.write_bytes(data)
    ctx = AnalysisContext(symbol_paths=(_symbols(tmp_path / "syms"),))
    art = Artifact("hang.dmp", ArtifactKind.MINIDUMP, len(data), "0" * 64, local_path=path)
    out = list(MinidumpAnalyzer().analyze(art, ctx))
    findings = {f.code: f for f in out if isinstance(f, Finding)}
    assert "DUMP.CRASH" not in findings
    dl = findings["DUMP.DEADLOCK"]
    assert dl.data["threads"] == [1001, 1002]
    assert dl.data["resources"] == [f"futex:{lock_a:#x}", f"futex:{lock_b:#x}"]
    assert [e.locator for e in dl.evidence] == ["thread:1/frame:0", "thread:2/frame:0"]
    hang = findings["DUMP.HANG"]
    assert {w["thread"]: w["kind"] for w in hang.data["waiting"]} == {1000: "join", 1001: "mutex", 1002: "mutex"}


def test_thousands_of_threads_in_bounded_time():
    n = 3000
    threads = [FakeThread(10_000 + i, {"rip": APP.base + 0x120, "rsp": 0x7FFD00000000 + i * 0x1000},
                          0x7FFD00000000 + i * 0x1000, struct.pack("<4Q", APP.base + 0x310, 0, 0, 0))
               for i in range(n)]
    data = build(DumpSpec(threads=threads, modules=[APP, LIBC], exception_tid=10_000))
    t = time.perf_counter()
    rep = report_from_minidump(parse_minidump(data, "big.dmp"), SymbolStore(()))
    elapsed = time.perf_counter() - t
    assert len(rep.threads) == n and rep.crashing_thread == 0
    assert all(len(th.frames) == 2 for th in rep.threads)
    assert elapsed < 20
