"""Backline's ELF core stacks against gdb's ``thread apply all bt`` on the same cores."""

from __future__ import annotations

import time

import pytest

from backline.analyzers.dumps.elfcore import load_core
from backline.analyzers.dumps.elfcore.analysis import clean_function


def _names(frames) -> list[str]:
    return [clean_function(f.function) or "??" for f in frames]


def _gdb_names(names: list[str]) -> list[str]:
    return [clean_function(n) or "??" for n in names]


def _assert_matches_gdb(ours: list[str], gdb: list[str], where: str) -> None:
    """gdb's frames (it stops at ``main``) are a prefix of ours, name for name."""
    assert ours[:len(gdb)] == gdb, f"{where}: ours {ours[:len(gdb) + 2]} vs gdb {gdb}"


@pytest.mark.parametrize("name", ["null_deref", "abort_assert", "deadlock", "cpp_crash", "handler"])
def test_every_thread_matches_gdb(linux_cores, name):
    if name not in linux_cores:
        pytest.skip(f"{name} was not built: its compiler is missing (apt-get install g++)")
    b = linux_cores[name]
    rep = load_core(b.core, [b.exe.parent])
    assert {t.id for t in rep.threads} == set(b.gdb_threads), "thread ids differ from gdb"
    for t in rep.threads:
        _assert_matches_gdb(_names(t.frames), _gdb_names(b.gdb_threads[t.id].functions),
                            f"{name} thread {t.id}")


def test_null_deref_crash(linux_cores):
    b = linux_cores["null_deref"]
    rep = load_core(b.core, [b.exe.parent])
    assert rep.exception is not None and rep.exception.code == b.gdb_signal == 11
    assert rep.exception.type == "SIGSEGV" and rep.exception.subcode == "SEGV_MAPERR"
    assert rep.exception.address is not None and rep.exception.address < 0x100
    assert rep.problem_class == "NULL_POINTER_WRITE"
    top = rep.crashed_thread.frames
    assert [(f.function, f.line) for f in top[:3]] == [("store_value", 5), ("process", 8), ("main", 14)]
    assert top[0].trust == "context" and top[1].trust == "cfi"
    assert rep.blamed_frame == 0 and rep.signature == "store_value"
    assert rep.bucket_id == "NULL_POINTER_WRITE_SIGSEGV_null_deref!store_value"
    insn = rep.extra["crash_instruction"]
    assert insn["text"] == "mov dword ptr [rax + 4], edx"          # n->value = v, n == NULL
    assert insn["registers"]["rax"] == 0 and insn["registers"]["edx"] == 42
    assert insn["address"] == top[0].instruction


def test_abort_assert(linux_cores):
    b = linux_cores["abort_assert"]
    rep = load_core(b.core, [b.exe.parent])
    assert rep.exception.code == b.gdb_signal == 6
    assert rep.problem_class == "ABORT_ASSERT"
    names = _names(rep.crashed_thread.frames)
    i = names.index("check_config")
    assert names[i:i + 3] == ["check_config", "load", "main"]
    assert {"raise", "abort", "__assert_fail"} <= set(names[:i])
    blamed = rep.crashed_thread.frames[rep.blamed_frame]
    assert blamed.function == "check_config" and blamed.line == 6


def test_stack_overflow_is_fast_and_bounded(linux_cores):
    b = linux_cores["stack_overflow"]
    t0 = time.perf_counter()
    rep = load_core(b.core, [b.exe.parent])
    elapsed = time.perf_counter() - t0
    assert rep.exception.code == b.gdb_signal == 11
    assert rep.problem_class == "STACK_OVERFLOW"
    frames = rep.crashed_thread.frames
    gdb = b.gdb_threads[rep.crashed_thread.id]
    names = _names(frames)
    # gdb's full count (it stops at main); ours continues into libc's start-up code
    assert names.index("main") + 1 == gdb.frames
    assert set(names[:gdb.frames - 1]) == {"recurse"}
    assert gdb.frames > 20_000
    assert elapsed < 30, f"{len(frames)} frames took {elapsed:.1f}s"


def test_deadlock_cycle_from_mutex_owners(linux_cores):
    b = linux_cores["deadlock"]
    rep = load_core(b.core, [b.exe.parent])
    assert rep.exception is None and rep.crashing_thread is None        # a hang, not a crash
    assert len(rep.threads) == 3
    assert len(rep.deadlocks) == 1
    d = rep.deadlocks[0]
    workers = {t.id: t for t in rep.threads if any(f.function in ("worker_ab", "worker_ba") for f in t.frames)}
    assert set(d.threads) == set(workers)
    for tid in d.threads:
        w = workers[tid].wait
        assert w is not None and w.kind == "mutex" and w.owner in d.threads and w.owner != tid
    main = next(t for t in rep.threads if t.id not in workers)
    assert main.wait is not None and main.wait.kind == "join" and main.wait.owner in workers


def test_cpp_names_are_qualified(linux_cores):
    if "cpp_crash" not in linux_cores:
        pytest.skip("g++ is missing (apt-get install g++)")
    b = linux_cores["cpp_crash"]
    rep = load_core(b.core, [b.exe.parent])
    names = _names(rep.crashed_thread.frames)
    assert names[:5] == ["std::vector<int, std::allocator<int> >::operator[]", "shop::Basket::total",
                         "shop::(anonymous namespace)::checkout", "shop::run<int>", "main"]
    assert rep.problem_class == "NULL_POINTER_READ"


def test_crash_in_signal_handler_blames_interrupted_code(linux_cores):
    b = linux_cores["handler"]
    rep = load_core(b.core, [b.exe.parent])
    frames = rep.crashed_thread.frames
    k = _names(frames).index("<signal handler called>")
    assert frames[k + 1].trust == "signal" and frames[k + 1].function == "poke"
    assert frames[rep.blamed_frame].function == "poke"
    assert rep.exception.type == "SIGABRT"
