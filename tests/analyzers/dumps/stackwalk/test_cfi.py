"""STACK CFI and STACK WIN program evaluation."""

from __future__ import annotations

from backline.analyzers.dumps.stackwalk.cfi import cfi_unwind, parse_rules, win_fpo, win_program
from backline.analyzers.dumps.symbols import WinFrameInfo


def _mem(words: dict[int, int]):
    return words.get


def test_cfi_rules_later_ones_win():
    r = parse_rules(".cfa: $rsp 8 + .ra: .cfa -8 + ^ .cfa: $rsp 16 + $rbp: .cfa -16 + ^")
    assert r[".cfa"] == ["$rsp", "16", "+"] and r["rbp"] == [".cfa", "-16", "+", "^"]


def test_cfi_unwind_recovers_caller_registers():
    mem = _mem({0x1000: 0x7000, 0x1008: 0x401234})
    out = cfi_unwind(".cfa: $rsp 16 + .ra: .cfa -8 + ^ $rbp: .cfa -16 + ^", {"rsp": 0x1000}, mem, 8)
    assert out == {".cfa": 0x1010, ".ra": 0x401234, "rbp": 0x7000}


def test_cfi_unwind_fails_cleanly():
    assert cfi_unwind(".cfa: $rsp 8 +", {"rsp": 1}, _mem({}), 8) is None            # no .ra
    assert cfi_unwind(".cfa: $rsp 8 + .ra: .cfa ^", {"rsp": 1}, _mem({}), 8) is None  # unreadable
    assert cfi_unwind(".cfa: $rsp 0 / .ra: 1", {"rsp": 1}, _mem({}), 8) is None       # divide by zero
    out = cfi_unwind(".cfa: $rsp 8 + .ra: 5 $rbx: $r99", {"rsp": 1}, _mem({}), 8)
    assert "rbx" not in out and "-rbx" in out                                         # cleared


def _info(**kw) -> WinFrameInfo:
    base = dict(type=4, rva=0, code_size=16, prologue_size=0, epilogue_size=0, parameter_size=8,
                saved_register_size=4, local_size=12, max_stack_size=0, program=None,
                allocates_base_pointer=False)
    base.update(kw)
    return WinFrameInfo(**base)


def test_stack_win_program_string():
    prog = "$T0 $ebp = $eip $T0 4 + ^ = $ebp $T0 ^ = $esp $T0 8 + ="
    out = win_program(_info(program=prog), {"esp": 0x100, "ebp": 0x200},
                      _mem({0x200: 0x300, 0x204: 0x401000}), 0)
    assert out == {"eip": 0x401000, "esp": 0x208, "ebp": 0x300}


def test_stack_win_ra_search_start():
    prog = "$T0 .raSearchStart = $eip $T0 ^ = $esp $T0 4 + ="
    out = win_program(_info(program=prog), {"esp": 0x100, "ebp": 0}, _mem({0x100 + 16 + 4: 0x401000}), 4)
    assert out["eip"] == 0x401000 and out["esp"] == 0x100 + 20 + 4


def test_stack_win_fpo():
    out = win_fpo(_info(type=0), {"esp": 0x100, "ebp": 0x555, "eip": 1}, _mem({0x100 + 16: 0x401000}), 0, False)
    assert out == {"eip": 0x401000, "esp": 0x114, "ebp": 0x555}
