"""Signatures equal Socorro's (socorro_signatures.tsv) for the corpus minidumps."""

from __future__ import annotations

from pathlib import Path

import pytest

from backline.analyzers.dumps.minidump.process import process_minidump
from backline.analyzers.dumps.model import CrashException, CrashReport, CrashThread, StackFrame
from backline.analyzers.dumps.signature import normalize_function, socorro_signature
from backline.testing import corpus_dir

#: Known differences from Socorro, by dump name, with the reason.  Must stay under 5%.
KNOWN_DIFFERENCES: dict[str, str] = {}


def _rows() -> list[tuple[Path, str]]:
    rows = []
    for tsv in sorted((corpus_dir() / "dumps").glob("**/generated/socorro_signatures.tsv")):
        coll = tsv.parent.parent
        for line in tsv.read_text().splitlines():
            if line.startswith("#") or "\t" not in line:
                continue
            name, sig = line.split("\t", 1)
            rows.append((coll / f"{name}.dmp", sig))
    return rows


ROWS = _rows()


def test_signatures_match_socorro_for_95_percent():
    assert len(ROWS) >= 30
    diffs = {}
    for dmp, expected in ROWS:
        rep = process_minidump(dmp, [dmp.parent / "symbols"])
        got = socorro_signature(rep)
        if got != expected:
            diffs[dmp.stem] = (got, expected)
    unexplained = {k: v for k, v in diffs.items() if k not in KNOWN_DIFFERENCES}
    assert not unexplained
    assert len(diffs) <= 0.05 * len(ROWS)


@pytest.mark.parametrize("raw,expected", [
    ("`anonymous namespace'::CrashFunction", "(anonymous namespace)::CrashFunction"),
    ("std::vector<int, std::allocator<int> >::push_back(int const &)", "std::vector<T>::push_back"),
    ("nsFoo::Bar(int,char *) const", "nsFoo::Bar"),
    ("static void * Allocator<Base>::malloc(unsigned __int64)", "Allocator<T>::malloc"),
])
def test_normalize_function(raw, expected):
    assert normalize_function(raw) == expected


def test_normalize_rust_function_drops_hash():
    assert normalize_function("alloc::vec::Vec<u8>::push::h0123abcd", rust=True) == "alloc::vec::Vec<T>::push"


def _native(frames, reason="SIGSEGV"):
    th = CrashThread(1, tuple(StackFrame(i, "cfi", 0x1000 + i, module=m, function=f)
                              for i, (m, f) in enumerate(frames)), crashed=True)
    return CrashReport("elf_core", threads=(th,), crashing_thread=0,
                       exception=CrashException(reason))


def test_prefix_frames_accumulate_until_a_relevant_one():
    rep = _native([("libc.so.6", "raise"), ("libc.so.6", "abort"), ("app", "check_config"), ("app", "main")])
    assert socorro_signature(rep) == "raise | abort | check_config"


def test_irrelevant_frames_are_skipped_and_libraries_merged():
    rep = _native([(None, None), ("libc.so", None), ("libc.so", None), ("app", "work")])
    # a bare address is irrelevant; "libc.so" is a prefix; repeated ".so" frames are merged
    assert socorro_signature(rep) == "libc.so | work"


def test_text_trace_signature():
    exc = CrashException("java.lang.NullPointerException",
                         frames=(StackFrame(0, "text", function="com.acme.Foo.bar", language="java"),))
    rep = CrashReport("java", exception=exc)
    assert socorro_signature(rep) == "java.lang.NullPointerException at com.acme.Foo.bar"


def test_frame_in_unloaded_module():
    th = CrashThread(1, (StackFrame(0, "context", 0x7FF0001234),
                         StackFrame(1, "scan", 0x401000, module="app.exe", function="run")), crashed=True)
    rep = CrashReport("minidump", os="Windows NT", threads=(th,), crashing_thread=0,
                      exception=CrashException("EXCEPTION_ACCESS_VIOLATION_EXEC", address=0x7FF0001234),
                      extra={"unloaded_frames": {"0/0": [{"module": "plugin.dll", "offsets": [0x1234]}]}})
    assert socorro_signature(rep) == "(unloaded plugin.dll) | run"        # as siggen 2.2 gives
    from backline.analyzers.dumps.json_out import report_to_json
    f0 = report_to_json(rep)["crashing_thread"]["frames"][0]
    assert f0["unloaded_modules"] == [{"module": "plugin.dll", "offsets": ["0x0000000000001234"]}]
