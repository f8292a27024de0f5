"""Stream parsing facts asserted by rust-minidump's and Breakpad's own tests (SOURCES.md)."""

from __future__ import annotations

import struct

from backline.analyzers.dumps.minidump.parser import parse_minidump, read_minidump


def test_minidump2_facts(corpus):
    md = read_minidump(corpus / "dumps/breakpad/minidump2.dmp")
    assert len(md.modules) == 13
    m0 = md.modules[0]
    assert (m0.code_file, m0.base, m0.size, m0.debug_file) == ("c:\\test_app.exe", 0x400000, 0x2D000, "c:\\test_app.pdb")
    assert [t.thread_id for t in md.threads] == [0xBF4, 0x11C0]
    assert md.exception.thread_id == 0xBF4 and md.exception.code == 0xC0000005
    assert md.exception.context.regs["eip"] == 0x40429E and md.exception.context.regs["esp"] == 0x12FE84
    # thread contexts as in minidump2.dump.out (minidump_dump) and rust-minidump's test_thread_list
    t0, t1 = md.threads[0].context.regs, md.threads[1].context.regs
    assert (t0["eip"], t0["esp"]) == (0x7C90EB94, 0x12F320)
    assert (t1["eip"], t1["esp"]) == (0x7C90EB94, 0x97F6EC)
    assert md.misc_info.process_id == 3932 and md.misc_info.process_create_time == 0x45D35F73
    assert md.breakpad_info == {"dump_thread_id": 0x11C0, "requesting_thread_id": 0xBF4}


def test_cet_xsave_context_and_memory_info(corpus):
    md = read_minidump(corpus / "dumps/breakpad/tiny-exe-with-cet-xsave.dmp")
    si = md.system_info
    assert (si.os, si.os_version, si.cpu, si.cpu_info) == ("Windows NT", "10.0.22000 282", "amd64",
                                                          "family 6 model 140 stepping 1")
    assert md.exception is None and len(md.threads) == 1
    assert md.threads[0].context is not None and md.threads[0].context.regs["rip"] > 0
    assert len(md.memory_info) > 100
    assert any(r.executable for r in md.memory_info)


def test_crashpad_annotations(corpus):
    md = read_minidump(corpus / "dumps/rust-minidump/simple-crashpad.dmp")
    c = md.crashpad_info
    assert c.simple_annotations == {"hello": "world"}
    assert len(c.modules) == 2
    m16 = next(m for m in c.modules if m.module_index == 16)
    assert "abort() called" in m16.list_annotations
    ann = read_minidump(corpus / "dumps/breakpad/minidump_crashpad_annotation.dmp").crashpad_info
    assert ann is not None and ann.modules


def test_linux_streams(corpus):
    md = read_minidump(corpus / "dumps/rust-minidump/linux-mini.dmp")
    assert "maps" in md.linux and "proc_status" in md.linux
    assert md.system_info.os == "Linux" and md.modules[0].code_id            # ELF build id


def test_thread_names(corpus):
    md = read_minidump(corpus / "dumps/breakpad/minidump_crashpad_annotation.dmp")
    assert "com.apple.uikit.eventfetch-thread" in [t.name for t in md.threads]


def test_comment_and_unknown_streams_are_tolerated(corpus):
    data = bytearray((corpus / "dumps/breakpad/minidump2.dmp").read_bytes())
    n, dir_rva = struct.unpack_from("<II", data, 8)
    # turn the last directory entry into a comment stream pointing at text we append
    text = b"customer says: it crashed\0"
    rva = len(data)
    data += text
    struct.pack_into("<III", data, dir_rva + 12 * (n - 1), 10, len(text), rva)
    md = parse_minidump(bytes(data), "c.dmp")
    assert md.comments == ["customer says: it crashed"]
