"""The walk loop: progress is enforced, cycles and absurd depths end."""

from __future__ import annotations

import struct

from backline.analyzers.dumps.minidump.context import CpuContext
from backline.analyzers.dumps.stackwalk import ModuleMap, StackMemory, walk_stack


class _Mod:
    def __init__(self, base, size):
        self.base, self.size = base, size


def _stack(base: int, words: list[int], ptr: int = 8) -> StackMemory:
    fmt = "<%dQ" % len(words) if ptr == 8 else "<%dI" % len(words)
    return StackMemory(base, struct.pack(fmt, *words), ptr)


def test_cyclic_frame_pointer_chain_terminates():
    # rbp points at itself: [rbp] = rbp, [rbp+8] = a code address
    base = 0x7000
    words = [0] * 64
    words[4] = base + 32          # saved rbp == its own address -> cycle
    words[5] = 0x401000
    mem = _stack(base, words)
    mods = ModuleMap([_Mod(0x400000, 0x10000)], lambda i: None)
    ctx = CpuContext("amd64", {"rip": 0x401000, "rsp": base, "rbp": base + 32})
    frames, cut = walk_stack(ctx, mem, mods, "linux")
    assert not cut and len(frames) < 10


def test_deep_stack_is_cut_at_max_frames():
    # a long valid frame-pointer chain of x86 frames
    base, n = 0x10000, 400
    words = []
    for i in range(n):
        words += [base + 8 * (i + 1), 0x401000 + i]       # saved ebp, return address
    mem = _stack(base, words, 4)
    mods = ModuleMap([_Mod(0x400000, 0x10000)], lambda i: None)
    ctx = CpuContext("x86", {"eip": 0x401000, "esp": base - 4, "ebp": base})
    frames, cut = walk_stack(ctx, mem, mods, "windows", max_frames=100)
    assert cut and len(frames) == 100
    assert [f.trust for f in frames[:3]] == ["context", "frame_pointer", "frame_pointer"]
    assert frames[1].instruction == 0x401000 - 1


def test_scan_finds_return_address_in_module():
    base = 0x8000
    words = [0x1234, 0xDEAD, 0x402345, 0]
    mem = _stack(base, words)
    mods = ModuleMap([_Mod(0x400000, 0x10000)], lambda i: None)
    ctx = CpuContext("amd64", {"rip": 0x401000, "rsp": base, "rbp": 0})
    frames, _ = walk_stack(ctx, mem, mods, "windows")
    assert frames[1].trust == "scan" and frames[1].context.ip == 0x402345
    assert frames[1].context.sp == base + 24


def test_no_memory_gives_context_frame_only():
    mods = ModuleMap([], lambda i: None)
    frames, cut = walk_stack(CpuContext("amd64", {"rip": 0x401000, "rsp": 0x1000}), None, mods, "linux")
    assert len(frames) == 1 and not cut


def test_arm64_frame_records_and_pointer_authentication():
    """Breakpad's rule: the caller's pc is the callee's lr, [fp+8] becomes the caller's lr."""
    base = 0x7000
    words = [0] * 16
    words[2], words[3] = 0x7030, 0x0023_0000_0010_0300      # frame record with PAC bits
    words[6], words[7] = 0, 0
    mem = _stack(base, words)
    mods = ModuleMap([_Mod(0x100000, 0x10000)], lambda i: None)
    ctx = CpuContext("arm64", {"pc": 0x100100, "sp": base, "fp": 0x7010, "lr": 0x100200})
    frames, _ = walk_stack(ctx, mem, mods, "ios")
    assert [f.trust for f in frames] == ["context", "frame_pointer", "frame_pointer"]
    assert [f.instruction for f in frames] == [0x100100, 0x100200 - 4, 0x100300 - 4]


def test_arm64_cfi_with_x29_x30_names():
    from backline.analyzers.dumps.symbols import SymbolFile

    sym = SymbolFile.parse_text("MODULE ios arm64 00 app\nFUNC 100 40 0 leaf\n"
                                "STACK CFI INIT 100 40 .cfa: sp 16 + .ra: .cfa -8 + ^ x29: .cfa -16 + ^\n")
    base = 0x7000
    words = [0] * 8
    words[0], words[1] = 0x7040, 0x100220
    mem = _stack(base, words)
    mods = ModuleMap([_Mod(0x100000, 0x10000)], lambda i: sym)
    ctx = CpuContext("arm64", {"pc": 0x100104, "sp": base, "fp": 0x7100, "lr": 0x1})
    frames, _ = walk_stack(ctx, mem, mods, "ios")
    assert frames[1].trust == "cfi" and frames[1].context.regs["fp"] == 0x7040
    assert frames[1].context.sp == base + 16 and frames[1].instruction == 0x100220 - 4
