"""Windows x64 without symbol files: a real PE32+ program (built with mingw-w64) crashes under
Wine and writes minidumps of itself with dbghelp's MiniDumpWriteDump.  Its stack is walked with
the images' own unwind info (.pdata/.xdata) — from the dump's memory (full-memory dump) or from
--binaries (a dump without images) — and system modules are named by their export tables.

The oracle is the toolchain's own symbol table (mingw nm): every frame must land in the
function the program's call chain says, in order.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from backline.debugger.session import Session
from backline.debugger.target import open_target

PROGRAM = r"""
#include <windows.h>
#include <dbghelp.h>
#include <stdio.h>
static void write_dump(EXCEPTION_POINTERS *ep, const char *name, MINIDUMP_TYPE type) {
    HANDLE f = CreateFileA(name, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    MINIDUMP_EXCEPTION_INFORMATION mei = { GetCurrentThreadId(), ep, FALSE };
    MiniDumpWriteDump(GetCurrentProcess(), GetCurrentProcessId(), f, type, &mei, NULL, NULL);
    CloseHandle(f);
}
static LONG WINAPI on_crash(EXCEPTION_POINTERS *ep) {
    write_dump(ep, "full.dmp", MiniDumpWithFullMemory);
    write_dump(ep, "normal.dmp", MiniDumpNormal);
    return EXCEPTION_EXECUTE_HANDLER;
}
__attribute__((noinline)) int store_quantity(int *slot, int v) {
    volatile int scratch[40]; scratch[3] = v; *slot = scratch[3]; return scratch[5];
}
__attribute__((noinline)) int validate_lines(int *slot, int n) {
    int r = 0; for (int i = 0; i < n; i++) r += store_quantity(slot, i); return r + 1;
}
__attribute__((noinline)) int process_order(int n) {
    char label[64]; sprintf(label, "order-%d", n); return validate_lines(NULL, n) + label[0];
}
int main(void) { SetUnhandledExceptionFilter(on_crash); int r = process_order(3); printf("%d\n", r); return r; }
"""
CHAIN = ["store_quantity", "validate_lines", "process_order", "main", "__tmainCRTStartup", "mainCRTStartup"]


def _wine() -> str | None:
    for c in ("wine64", "/usr/lib/wine/wine64", "wine"):
        p = shutil.which(c) or (c if os.path.exists(c) else None)
        if p:
            return p
    return None


@pytest.fixture(scope="module")
def windows_crash(tmp_path_factory):
    cc, wine = shutil.which("x86_64-w64-mingw32-gcc"), _wine()
    if cc is None or wine is None:
        pytest.fail("mingw-w64 and Wine are needed (apt-get install gcc-mingw-w64-x86-64 wine64)")
    d = tmp_path_factory.mktemp("win64")
    (d / "order.c").write_text(PROGRAM)
    subprocess.run([cc, "-O1", "-fno-inline", "-fno-optimize-sibling-calls", "-o", str(d / "order.exe"),
                    str(d / "order.c"), "-ldbghelp"], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "WINEDEBUG": "-all", "WINEPREFIX": str(d / "prefix"), "WINEDLLOVERRIDES": "mscoree,mshtml="}
    subprocess.run([wine, "order.exe"], cwd=d, env=env, capture_output=True, timeout=600)
    subprocess.run([shutil.which("wineserver") or "/usr/lib/wine/wineserver", "-k"], env=env, capture_output=True,
                   timeout=60)
    assert (d / "full.dmp").is_file() and (d / "normal.dmp").is_file(), "Wine wrote no minidump"
    nm = subprocess.run([cc.replace("gcc", "nm"), "-n", str(d / "order.exe")], capture_output=True, text=True,
                        check=True).stdout
    syms = sorted((int(m[1], 16), m[2]) for m in re.finditer(r"^([0-9a-f]+) [Tt] ([^.\s]\S*)$", nm, re.M))
    return d, syms


def _function_of(syms, address):
    below = [name for start, name in syms if start <= address]
    return below[-1] if below else None


def _check_chain(frames, syms, image_base):
    crash = [f for f in frames if f["module"] == "order.exe"]
    names = [_function_of(syms, image_base + f["module_offset"]) for f in crash]
    assert names[:len(CHAIN)] == CHAIN, names
    assert [f["trust"] for f in frames[1:len(CHAIN)]] == ["cfi"] * (len(CHAIN) - 1)


def test_full_memory_dump_unwinds_with_pdata_and_names_exports(windows_crash):
    d, syms = windows_crash
    s = Session([open_target(d / "full.dmp")])
    try:
        base = next(m["base"] for m in s.run("lm").data["modules"] if m["name"] == "order.exe")
        frames = s.run("k").data["frames"]
        _check_chain(frames, syms, base)
        # beyond the program: Wine's kernel32 and ntdll, named from their export tables
        outer = [f["function"] for f in frames[len(CHAIN):]]
        assert "BaseThreadInitThunk" in outer and "RtlUserThreadStart" in outer
        kinds = {m["name"]: m["symbols"] for m in s.run("lm").data["modules"]}
        assert kinds["kernel32.dll"] == "export"
        assert s.run("ln kernel32!BaseThreadInitThunk").data["below"]["name"] == "BaseThreadInitThunk"
        # the image is in the dump: the faulting instruction disassembles
        assert s.run(".ecxr").error is None
        assert s.run("u @rip L1").data["instructions"], "code bytes of a full-memory dump"
        assert "NULL_POINTER_WRITE" in s.run("!analyze -v").text
    finally:
        s.close()


def test_dump_without_images_unwinds_with_binaries(windows_crash):
    d, syms = windows_crash
    plain = Session([open_target(d / "normal.dmp")])
    try:
        frames = plain.run("k").data["frames"]
        # without the image the walk can only scan: it does not find the chain with cfi trust
        assert [f["trust"] for f in frames[1:4]] != ["cfi"] * 3
    finally:
        plain.close()
    bins = d / "bins"
    bins.mkdir(exist_ok=True)
    shutil.copy(d / "order.exe", bins / "ORDER.EXE")          # names match without regard to case
    s = Session([open_target(d / "normal.dmp", binaries=[bins])])
    try:
        base = next(m["base"] for m in s.run("lm").data["modules"] if m["name"] == "order.exe")
        _check_chain(s.run("k").data["frames"], syms, base)
    finally:
        s.close()


def test_backline_dump_uses_the_same_walk(windows_crash):
    from backline.analyzers.dumps.minidump.process import process_minidump
    d, syms = windows_crash
    rep = process_minidump(d / "full.dmp")
    frames = rep.crashed_thread.frames
    assert [f.trust for f in frames[1:4]] == ["cfi"] * 3
    assert rep.crashed_thread.frames[0].module == "order.exe"
