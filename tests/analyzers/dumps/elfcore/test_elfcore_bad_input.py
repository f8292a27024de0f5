"""Bad cores give a clear error (file and offset) or a partial report - never a crash or hang."""

from __future__ import annotations

import struct

import pytest

from backline.analyzers.dumps.elfcore import load_core
from backline.errors import FormatError, TruncatedError

LLDB = ("dumps", "lldb", "elf-core", "linux-x86_64.core")


def _core_bytes(corpus) -> bytes:
    return corpus.joinpath(*LLDB).read_bytes()


@pytest.mark.parametrize("data,err", [
    (b"", TruncatedError),
    (b"\0" * 4096, FormatError),
    (b"MZ" + b"\0" * 100, FormatError),
])
def test_not_a_core(tmp_path, data, err):
    p = tmp_path / "x.core"
    p.write_bytes(data)
    with pytest.raises(err) as info:
        load_core(p)
    assert str(p) in str(info.value)


def test_executable_is_not_a_core(corpus):
    with pytest.raises(FormatError, match="not a core"):
        load_core(corpus / "dumps" / "lldb" / "elf-core" / "linux-x86_64.out")


@pytest.mark.parametrize("cut", [64, 300, 0x200, 0x1000, 0x3000])
def test_truncated_core(tmp_path, corpus, cut):
    p = tmp_path / "cut.core"
    p.write_bytes(_core_bytes(corpus)[:cut])
    try:
        rep = load_core(p)
    except FormatError as exc:
        assert str(p) in str(exc) and exc.locator and exc.locator.startswith("offset:")
    else:
        assert rep.warnings, "a truncated core must say what is missing"


def test_absurd_program_header_count(tmp_path, corpus):
    data = bytearray(_core_bytes(corpus))
    struct.pack_into("<H", data, 56, 0xFFF0)          # e_phnum
    p = tmp_path / "phnum.core"
    p.write_bytes(bytes(data))
    with pytest.raises(TruncatedError, match="program headers"):
        load_core(p)


def test_note_size_past_segment(tmp_path, corpus):
    data = bytearray(_core_bytes(corpus))
    note_off = 0x190                                   # PT_NOTE offset of this core
    struct.pack_into("<I", data, note_off + 4, 0x7FFFFFF0)   # descsz of the first note
    p = tmp_path / "note.core"
    p.write_bytes(bytes(data))
    with pytest.raises(TruncatedError) as info:
        load_core(p)
    assert info.value.locator == f"offset:{note_off:#x}"


def test_cyclic_stack_terminates(tmp_path, corpus):
    """A frame-pointer chain that points to itself stops instead of looping."""
    from backline.analyzers.dumps.elfcore.reader import open_core
    from backline.analyzers.dumps.elfcore.unwind import Walker
    with open_core(corpus.joinpath(*LLDB)) as core:
        walker = Walker(core, [])
        regs = dict(core.threads[0].registers)
        seg = next(s for s in core.segments if s.filesz and s.flags & 2)     # a writable dumped segment
        regs["rsp"] = regs["rbp"] = seg.vaddr
        frames = walker.walk(regs, max_frames=1000)
        assert 1 <= len(frames) <= 1000


def test_random_corruption_never_escapes_as_another_error(tmp_path, corpus):
    """Flipped bytes (mostly in headers and notes) give a report or a FormatError, nothing else."""
    import random
    src = _core_bytes(corpus)
    exe = corpus / "dumps" / "lldb" / "elf-core" / "linux-x86_64.out"
    rnd = random.Random(7)
    outcomes = {"report": 0, "error": 0}
    for i in range(80):
        data = bytearray(src)
        for _ in range(rnd.choice([1, 4, 16])):
            data[rnd.randrange(0x3000)] = rnd.randrange(256)
        p = tmp_path / f"fuzz{i}.core"
        p.write_bytes(bytes(data))
        try:
            load_core(p, [exe])
            outcomes["report"] += 1
        except FormatError as exc:
            assert str(p) in str(exc)
            outcomes["error"] += 1
    assert outcomes["report"] and outcomes["error"]
