"""Damaged crash dumps through ``backline analyze`` and ``backline dump``.

Real corpus minidumps, ELF cores and text traces are damaged in the test
(structure: absurd counts, self-referencing directories, duplicate streams,
missing and cyclic stacks; bytes: truncation, zeroed ranges, flipped bytes,
splat integers, spliced headers).  Whatever the damage: no traceback, exit
0 or 2 as documented, and when ``dump`` rejects a file ``analyze`` says so
for that file too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from . import mutate as m

MINIDUMPS = {   # file -> pointer size
    "rust-minidump/linux-mini.dmp": 8,
    "breakpad/linux_null_read_av.dmp": 8,
    "symbolic/windows-mini.dmp": 4,
    "breakpad/null_read_av.dmp": 4,
}

STRUCTURAL = {
    "stream-count-ffffffff": lambda d, w: m.md_set_header(d, count=0xFFFFFFFF),
    "directory-at-header": lambda d, w: m.md_set_header(d, dir_rva=0),
    "directory-past-end": lambda d, w: m.md_set_header(d, dir_rva=len(d) - 4),
    "streams-point-at-directory": lambda d, w: m.md_streams_point_at_directory(d),
    "all-streams-thread-list": lambda d, w: m.md_every_stream_is(d, 3),
    "all-streams-module-list": lambda d, w: m.md_every_stream_is(d, 4),
    "all-streams-exception": lambda d, w: m.md_every_stream_is(d, 6),
    "cyclic-stacks": lambda d, w: m.md_cyclic_stacks(d, w),
    "stack-memory-missing": lambda d, w: m.md_stack_missing(d),
    "context-is-header": lambda d, w: m.md_context_is_header(d),
    "zero-filled-after-header": lambda d, w: m.zero_range(d, 32, len(d)),
}


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("rel", sorted(MINIDUMPS))
@pytest.mark.parametrize("damage", sorted(STRUCTURAL))
def test_structurally_damaged_minidump(tmp_path, corpus, rel, damage):
    src = corpus / "dumps" / rel
    data = STRUCTURAL[damage](src.read_bytes(), MINIDUMPS[rel])
    p = _write(tmp_path, f"{src.stem}.{damage}.dmp", data)
    started = time.perf_counter()
    a = m.run_analyze(p)
    d = m.run_dump(p)
    assert time.perf_counter() - started < 20, "damaged dump took too long"
    assert a.code == 0                       # the dump is listed and analysed, never "nothing readable"
    names = [art["path"] for art in a.doc["artifacts"]]
    assert names == [p.name]
    if d.code == 2:   # dump refuses it: analyze must say so for this file, naming it
        assert m.flagged(a.doc, p.name), f"analyze is silent about {p.name}: {d.stderr}"
    else:
        threads = d.doc["threads"]
        assert all(len(t["frames"]) <= 1024 for t in threads)   # cyclic stacks end


@pytest.mark.parametrize("rel", ["breakpad/linux_null_read_av.dmp", "symbolic/windows-mini.dmp"])
def test_cyclic_stack_walk_stops(tmp_path, corpus, rel):
    """A stack whose every word points at itself: the walk stops at once, with the crash still found."""
    src = corpus / "dumps" / rel
    p = _write(tmp_path, "cyclic.dmp", m.md_cyclic_stacks(src.read_bytes(), MINIDUMPS[rel]))
    d = m.run_dump(p)
    assert d.code == 0
    crashed = d.doc["crashing_thread"]["frames"]
    assert crashed and crashed[0]["trust"] == "context"
    offsets = [f["offset"] for f in crashed]
    assert len(offsets) <= 64
    a = m.run_analyze(p)
    assert any(f["code"] == "DUMP.CRASH" for f in a.doc["findings"])


def _byte_damage(data: bytes) -> dict[str, bytes]:
    n = len(data)
    out = {f"truncated-{frac}": m.truncate(data, frac) for frac in (0.0001, 0.01, 0.1, 0.5, 0.99)}
    out["zeroed-middle"] = m.zero_range(data, n // 3, max(1, n // 6))
    out["flipped-head"] = m.flip_bytes(data, seed=1, within=4096)
    out["flipped-anywhere"] = m.flip_bytes(data, seed=2, count=200)
    out["ints-splat"] = m.splat_ints(data, seed=3)
    return out


BYTE_SEEDS = [
    "dumps/breakpad/minidump2.dmp",
    "dumps/breakpad/microdump-arm64.dmp",
    "dumps/lldb/elf-core/linux-x86_64.core",
    "dumps/lldb/elf-core/linux-i386.core",
    "dumps/text/gen/java_caused_by.txt",
    "dumps/text/gen/java_hs_err_pid2267.log",
    "dumps/text/gen/py_traceback_explicit.txt",
    "dumps/text/gen/dotnet_mono_inner_exception.txt",
    "dumps/text/gen/java_deadlock_jstack.txt",
]


@pytest.mark.parametrize("rel", BYTE_SEEDS)
def test_byte_damaged_dumps(tmp_path, corpus, rel):
    src = corpus / rel
    data = src.read_bytes()
    binary = not rel.startswith("dumps/text/") and "microdump" not in rel
    for damage, bad in _byte_damage(data).items():
        p = _write(tmp_path, f"{damage}-{src.name}", bad)
        a = m.run_analyze(p)
        d = m.run_dump(p)
        if a.code == 2:
            assert "nothing readable" in a.stderr and p.name in a.stderr
            continue
        assert [art["path"] for art in a.doc["artifacts"]] == [p.name]
        if binary and damage.startswith("truncated") and d.code == 2:
            assert m.flagged(a.doc, p.name), f"{damage}: analyze is silent, dump says {d.stderr}"


def test_elf_header_spliced_onto_minidump(tmp_path, corpus):
    """An ELF core header on minidump bytes, named .dmp: content decides, the damage is named."""
    core = (corpus / "dumps/lldb/elf-core/linux-x86_64.core").read_bytes()
    md = (corpus / "dumps/breakpad/null_read_av.dmp").read_bytes()
    p = _write(tmp_path, "spliced.dmp", m.splice(core, md))
    a = m.run_analyze(p)
    art = a.doc["artifacts"][0]
    assert art["kind"] == "elf_core"
    assert m.flagged(a.doc, "spliced.dmp")
    m.run_dump(p)


def test_minidump_header_on_a_log(tmp_path, corpus):
    """``MDMP`` and 28 header bytes, then a text log: a minidump with a named problem."""
    md = (corpus / "dumps/breakpad/null_read_av.dmp").read_bytes()
    log = (corpus / "logs/loghub-2k/Apache/Apache_2k.log").read_bytes()
    p = _write(tmp_path, "app.log", md[:32] + log)
    a = m.run_analyze(p)
    assert a.doc["artifacts"][0]["kind"] == "minidump"
    assert m.flagged(a.doc, "app.log")
    d = m.run_dump(p)
    assert d.code == 2


def test_dump_json_is_json_for_every_truncation_of_a_core(tmp_path, corpus):
    """``dump --json`` prints a document or one error line; never half a document."""
    data = (corpus / "dumps/lldb/elf-core/linux-x86_64.core").read_bytes()
    for frac in (0.2, 0.6, 0.95):
        p = _write(tmp_path, f"cut{frac}.core", m.truncate(data, frac))
        d = m.run_dump(p)
        if d.code == 0:
            assert isinstance(d.doc, dict) and d.doc.get("threads") is not None
            json.dumps(d.doc)


@pytest.mark.parametrize("rel", ["dumps/lldb/elf-core/linux-x86_64.core", "dumps/lldb/thread_crash/linux-x86_64.core"])
def test_structurally_damaged_elf_core(tmp_path, corpus, rel):
    src = corpus / rel
    for damage, data in m.elf_core_damages(src.read_bytes()).items():
        p = _write(tmp_path, f"{damage}.core", data)
        a = m.run_analyze(p)
        d = m.run_dump(p)
        assert a.code == 0 and [x["path"] for x in a.doc["artifacts"]] == [p.name]
        assert m.flagged(a.doc, p.name), f"{damage}: analyze is silent"
        if d.code == 2:
            assert "offset:0x" in d.stderr, d.stderr          # the place is named
