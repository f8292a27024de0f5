"""Breakpad .sym parsing and the symbol store."""

from __future__ import annotations

from backline.analyzers.dumps.symbols import SymbolFile, SymbolStore, sym_relpath

SYM = """MODULE windows x86 ABCDEF0123456789ABCDEF01234567891 demo.pdb
INFO CODE_ID 45D35F6C2D000 demo.exe
FILE 1 c:\\src\\demo.cc
FILE 2 c:\\src\\util.h
INLINE_ORIGIN 0 inlined_helper
FUNC 1000 40 8 Demo::Run(int)
1000 10 10 1
1010 20 11 1
INLINE 0 42 2 0 1010 8
1030 10 12 2
FUNC m 2000 10 0 merged_function
PUBLIC 3000 4 _PublicOnly@4
PUBLIC m 3100 0 other_public
STACK WIN 4 1000 40 3 0 8 0 4 0 1 $T0 $ebp = $eip $T0 4 + ^ = $ebp $T0 ^ = $esp $T0 8 + =
STACK WIN 0 2000 10 1 0 0 0 0 0 0 1
STACK CFI INIT 1000 40 .cfa: $esp 4 + .ra: .cfa 4 - ^
STACK CFI 1001 .cfa: $esp 8 + $ebp: .cfa 8 - ^
this line is garbage
"""


def test_functions_lines_and_inlines():
    s = SymbolFile.parse_text(SYM)
    assert (s.os, s.arch, s.debug_id, s.name, s.code_id) == (
        "windows", "x86", "ABCDEF0123456789ABCDEF01234567891", "demo.pdb", "45D35F6C2D000")
    info = s.lookup(0x1012)
    assert (info.function, info.function_base, info.parameter_size) == ("Demo::Run(int)", 0x1000, 8)
    # inlined call: the frame's location is the call site (util.h:42), the inline frame's the line inside
    assert (info.file, info.line, info.line_base) == ("c:\\src\\util.h", 42, 0x1010)
    assert info.inlines == (("inlined_helper", "c:\\src\\demo.cc", 11),)
    assert s.lookup(0x1019).inlines == () and s.lookup(0x1019).line == 11
    assert s.lookup(0x1035).file == "c:\\src\\util.h"
    assert s.lookup(0x2004).function == "merged_function"
    assert s.bad_lines == 1


def test_public_symbols_cover_the_gap_after_them():
    s = SymbolFile.parse_text(SYM)
    assert s.lookup(0x3002).function == "_PublicOnly@4" and s.lookup(0x3002).is_public
    assert s.lookup(0x3500).function == "other_public"
    assert s.lookup(0x0500) is None


def test_public_symbol_does_not_extend_over_a_function():
    s = SymbolFile.parse_text("MODULE Linux x86_64 00 m\nPUBLIC 100 0 early\nFUNC 200 10 0 f\nPUBLIC 300 0 late\n")
    assert s.lookup(0x150).function == "early"
    assert s.lookup(0x250) is None              # after f, but "early" ends where f begins
    assert s.lookup(0x350).function == "late"


def test_stack_records():
    s = SymbolFile.parse_text(SYM)
    assert s.cfi_rules(0x1000) == ".cfa: $esp 4 + .ra: .cfa 4 - ^"
    assert s.cfi_rules(0x1005).endswith(".cfa: $esp 8 + $ebp: .cfa 8 - ^")
    assert s.cfi_rules(0x1040) is None
    w = s.win_info(0x1010)
    assert w.type == 4 and w.program.startswith("$T0 $ebp =") and w.parameter_size == 8
    fpo = s.win_info(0x2001)
    assert fpo.type == 0 and fpo.program is None and fpo.allocates_base_pointer


def test_store_layout_and_cache(tmp_path):
    rel = sym_relpath("c:\\build\\demo.pdb", "ABCDEF0123456789ABCDEF01234567891")
    assert rel == "demo.pdb/ABCDEF0123456789ABCDEF01234567891/demo.sym"
    p = tmp_path / rel
    p.parent.mkdir(parents=True)
    p.write_text(SYM)
    store = SymbolStore([tmp_path / "missing", tmp_path])
    first = store.get("c:\\build\\demo.pdb", "ABCDEF0123456789ABCDEF01234567891")
    assert first is not None and first.lookup(0x1000).function == "Demo::Run(int)"
    assert store.get("demo.pdb", "ABCDEF0123456789ABCDEF01234567891") is not None
    assert store.get("demo.pdb", "0000") is None
    assert store.get("c:\\build\\demo.pdb", "ABCDEF0123456789ABCDEF01234567891") is first


def test_corpus_symbol_file(corpus):
    s = SymbolFile.from_path(next((corpus / "dumps/breakpad/symbols/test_app.pdb").glob("*/test_app.sym")))
    assert s.name == "test_app.pdb" and s.bad_lines == 0
    assert s.lookup(0x429E).function == "`anonymous namespace'::CrashFunction"
    assert s.lookup(0x429E).line == 58
