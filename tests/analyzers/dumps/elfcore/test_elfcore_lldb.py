"""The lldb test cores in the corpus, with the facts its tests assert (see SOURCES.md)."""

from __future__ import annotations

import pytest

from backline.analyzers.dumps.elfcore import load_core


@pytest.mark.parametrize("arch,pid,cpu,regions", [("x86_64", 32259, "amd64", 5), ("i386", 32306, "x86", 4)])
def test_elf_core_with_executable(corpus, arch, pid, cpu, regions):
    d = corpus / "dumps" / "lldb" / "elf-core"
    rep = load_core(d / f"linux-{arch}.core", [d / f"linux-{arch}.out"])
    assert rep.pid == pid and rep.cpu == cpu
    assert len(rep.threads) == 1
    assert rep.extra["memory_regions"] == regions
    assert rep.exception.type == "SIGSEGV" and rep.exception.code == 11
    frames = rep.crashed_thread.frames
    assert [f.function for f in frames] == ["bar", "foo", "_start"]
    assert [(f.file, f.line) for f in frames] == [("main.c", 4), ("main.c", 10), ("main.c", 16)]
    assert frames[0].trust == "context" and frames[1].trust == "cfi"
    assert rep.problem_class == "NULL_POINTER_WRITE"
    # the executable was found by build id / entry point although NT_FILE names a.out
    assert any(m.symbols_loaded for m in rep.modules)


def test_elf_core_without_executable_is_partial(corpus):
    d = corpus / "dumps" / "lldb" / "elf-core"
    rep = load_core(d / "linux-x86_64.core")
    assert rep.exception.type == "SIGSEGV"
    f0 = rep.crashed_thread.frames[0]
    assert f0.function is None and f0.module == "a.out" and f0.module_offset is not None
    assert any("no binary for a.out" in w for w in rep.warnings)


def test_thread_crash_sigill(corpus):
    rep = load_core(corpus / "dumps" / "lldb" / "thread_crash" / "linux-x86_64.core")
    assert rep.pid == 5222
    assert len(rep.threads) == 3
    crashed = rep.crashed_thread
    assert crashed.id == 5250
    assert rep.exception.code == 4 and rep.exception.type == "SIGILL"
    assert [t.crashed for t in rep.threads].count(True) == 1
    assert rep.problem_class == "ILLEGAL_INSTRUCTION"


def test_zero_filesz_segments_read_as_missing(corpus):
    from backline.analyzers.dumps.elfcore.reader import open_core
    with open_core(corpus / "dumps" / "lldb" / "thread_crash" / "linux-x86_64.core") as core:
        seg = next(s for s in core.segments if s.vaddr == 0x400000)
        assert seg.filesz == 0 and seg.memsz > 0
        assert core.read(0x400000, 4) is None
        assert not core.is_readable(0x400000)
