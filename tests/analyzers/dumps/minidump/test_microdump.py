"""Breakpad microdumps (Android logcat text) walk like Breakpad: the arm64 oracle."""

from __future__ import annotations

import pytest

from backline.analyzers.dumps.minidump.microdump import parse_microdump
from backline.analyzers.dumps.minidump.process import process_minidump
from backline.analyzers.dumps.symbols import SymbolStore
from backline.errors import FormatError


def test_arm64_microdump_matches_breakpad(corpus):
    d = corpus / "dumps/breakpad"
    expected = []
    for line in (d / "microdump.stackwalk.machine_readable-arm64.out").read_text().splitlines():
        p = line.split("|")
        if len(p) == 7 and p[0] == "0" and p[1].isdigit():
            expected.append((p[2], p[3] or int(p[6], 16)))
    rep = process_minidump(d / "microdump-arm64.dmp", store=SymbolStore([d / "symbols/microdump"]))
    assert rep.os == "Android" and rep.cpu == "arm64"
    assert [m.name for m in rep.modules][:2] == ["breakpad_unittests", "libnetd_client.so"]
    got = [(f.module, f.function or f.module_offset) for f in rep.threads[0].frames]
    assert got == expected
    assert [f.trust for f in rep.threads[0].frames][:2] == ["context", "cfi"]


def test_microdump_without_context_is_rejected():
    with pytest.raises(FormatError, match="without O"):
        parse_microdump(["-----BEGIN BREAKPAD MICRODUMP-----", "M 1000 0 10 AB x",
                         "-----END BREAKPAD MICRODUMP-----"], "m.txt")
    with pytest.raises(FormatError, match="line:2"):
        parse_microdump(["-----BEGIN BREAKPAD MICRODUMP-----", "M zz 0 10 AB x"], "m.txt")
