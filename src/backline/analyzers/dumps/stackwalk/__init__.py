"""Stack walking per CPU, in Breakpad's order: the thread context, then call-frame
info from ``.sym`` files (STACK WIN, STACK CFI), then (Windows x64) the PE image's own
unwind info (``.pdata``/``.xdata``) when its bytes are in the dump or given, then the
frame pointer, then stack scanning (40 words, 160 below a context or CFI frame).

The walk stops when the caller's instruction pointer is below 4096, when the
stack pointer does not grow, or after :data:`MAX_FRAMES` frames (a cyclic or
absurdly deep stack can never loop forever).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from backline.analyzers.dumps.minidump.context import CpuContext
from backline.analyzers.dumps.pe import PeImage
from backline.analyzers.dumps.symbols import SymbolFile, SymbolInfo

MAX_FRAMES = 2048


class ModuleLike(Protocol):
    base: int
    size: int


@dataclass(frozen=True, slots=True)
class WalkedFrame:
    """One frame found by a walker (before it becomes a model StackFrame)."""

    context: CpuContext
    trust: str                    # context | cfi | frame_pointer | scan
    instruction: int              # address looked up: ip for the context frame, return address - 1 else
    module_index: int | None
    symbol: SymbolInfo | None


class ModuleMap:
    """Find the module containing an address (sorted, binary search)."""

    def __init__(self, modules: Sequence[ModuleLike],
                 symbols: Callable[[int], SymbolFile | None],
                 pe: Callable[[int], "PeImage | None"] | None = None) -> None:
        order = sorted(range(len(modules)), key=lambda i: modules[i].base)
        self._bases = [modules[i].base for i in order]
        self._ends = [modules[i].base + modules[i].size for i in order]
        self._idx = order
        self.modules = modules
        self._symbols = symbols
        self._sym_cache: dict[int, SymbolFile | None] = {}
        self._pe = pe
        self._pe_cache: dict[int, PeImage | None] = {}

    def pe_image(self, index: int) -> "PeImage | None":
        """The module's PE image (from the dump's memory or --binaries), when there is one."""
        if self._pe is None:
            return None
        if index not in self._pe_cache:
            self._pe_cache[index] = self._pe(index)
        return self._pe_cache[index]

    def index_at(self, address: int) -> int | None:
        i = bisect.bisect_right(self._bases, address) - 1
        # modules may overlap (bad dumps): look at a few lower neighbours, never more
        for j in range(i, max(i - 8, -1), -1):
            if address < self._ends[j]:
                return self._idx[j]
        return None

    def symbols(self, index: int) -> SymbolFile | None:
        if index not in self._sym_cache:
            self._sym_cache[index] = self._symbols(index)
        return self._sym_cache[index]

    def lookup(self, address: int) -> tuple[int | None, SymbolInfo | None]:
        idx = self.index_at(address)
        if idx is None:
            return None, None
        sym = self.symbols(idx)
        if sym is None:
            # no symbol file: the nearest exported name, as WinDbg shows without symbols
            img = self.pe_image(idx)
            hit = img.export_at(address - self.modules[idx].base) if img is not None else None
            if hit is None:
                return idx, None
            return idx, SymbolInfo(hit[0], address - self.modules[idx].base - hit[1], is_public=True)
        return idx, sym.lookup(address - self.modules[idx].base)

    def instruction_seems_valid(self, ip: int) -> bool:
        """Breakpad/rust-minidump rule: inside a module, and inside a function when the
        module has symbols (the call instruction, ``ip - 1``, is checked)."""
        ins = ip - 1
        if ins <= 0:
            return False
        idx = self.index_at(ins)
        if idx is None:
            return False
        sym = self.symbols(idx)
        if sym is None:
            return True
        info = sym.lookup(ins - self.modules[idx].base)
        return info is not None and bool(info.function)


class StackMemory:
    """Pointer-sized reads from one thread's stack region."""

    __slots__ = ("base", "data", "end", "ptr")

    def __init__(self, base: int, data: bytes | memoryview, ptr: int) -> None:
        self.base, self.data, self.ptr = base, data, ptr
        self.end = base + len(data)

    def read(self, address: int) -> int | None:
        if address < self.base or address + self.ptr > self.end:
            return None
        off = address - self.base
        return int.from_bytes(self.data[off:off + self.ptr], "little")


def walk_stack(ctx: CpuContext, memory: StackMemory | None, modules: ModuleMap, os_short: str,
               max_frames: int = MAX_FRAMES) -> tuple[list[WalkedFrame], bool]:
    """Walk from ``ctx``.  Returns the frames and whether the walk was cut at ``max_frames``."""
    from backline.analyzers.dumps.stackwalk import amd64, arm64, x86

    step = {"x86": x86.caller, "amd64": amd64.caller, "arm64": arm64.caller}.get(ctx.cpu)
    idx, sym = modules.lookup(ctx.ip)
    frames = [WalkedFrame(ctx, "context", ctx.ip, idx, sym)]
    if step is None or memory is None:
        return frames, False
    while len(frames) < max_frames:
        found = step(frames, memory, modules, os_short)
        if found is None:
            return frames, False
        new_ctx, trust = found
        ip, sp = new_ctx.ip, new_ctx.sp
        last_sp = frames[-1].context.sp
        if ip < 4096:
            return frames, False
        if sp <= last_sp:
            # arm64 leaf functions keep sp: allowed once, for the context frame's caller
            leaf = ctx.cpu == "arm64" and len(frames) == 1 and sp == last_sp
            if not leaf:
                return frames, False
        ins = ip - (4 if ctx.cpu == "arm64" else 1)
        idx, sym = modules.lookup(ins)
        frames.append(WalkedFrame(new_ctx, trust, ins, idx, sym))
    return frames, True


def callee_regs(frame: WalkedFrame) -> dict[str, int]:
    """Registers of a frame that are known."""
    c = frame.context
    if c.valid is None:
        return dict(c.regs)
    return {k: v for k, v in c.regs.items() if k in c.valid}


def cfi_step(frames: list[WalkedFrame], memory: StackMemory, modules: ModuleMap,
             ip_reg: str, sp_reg: str, callee_saved: tuple[str, ...]) -> CpuContext | None:
    """Apply the STACK CFI rules for the last frame (shared by every CPU)."""
    from backline.analyzers.dumps.stackwalk.cfi import cfi_unwind

    last = frames[-1]
    if last.module_index is None:
        return None
    sym = modules.symbols(last.module_index)
    if sym is None:
        return None
    regs = callee_regs(last)
    if sp_reg not in regs:
        return None
    rules = sym.cfi_rules(last.instruction - modules.modules[last.module_index].base)
    if rules is None:
        return None
    out = cfi_unwind(rules, regs, memory.read, memory.ptr)
    if out is None:
        return None
    new = {r: regs[r] for r in callee_saved if r in regs}
    valid = set(new)
    for k, v in out.items():
        if k.startswith("-"):
            new.pop(k[1:], None)
            valid.discard(k[1:])
        elif not k.startswith("."):
            new[k] = v
            valid.add(k)
    new[sp_reg], new[ip_reg] = out[".cfa"], out[".ra"]
    valid.update((sp_reg, ip_reg))
    return CpuContext(last.context.cpu, new, frozenset(valid))
