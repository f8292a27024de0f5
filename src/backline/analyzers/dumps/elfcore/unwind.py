"""Stack walking for ELF cores: context, then CFI, then frame pointer, then scanning.

Each physical frame is found the first way that works, in Breakpad's order:
the thread's registers (``context``), DWARF call-frame information of the
module that holds the pc (``cfi``), the frame-pointer chain
(``frame_pointer``), and finally a scan of the stack for a word that looks
like a return address (``scan``: it points into executable code just after a
call instruction).  Walks are bounded: the stack pointer must grow strictly,
a walk stops at :data:`MAX_FRAMES`, and the pc/sp pair may not repeat.

Symbolization adds inlined frames from DWARF (``inlined=True``), so frame
lists compare one to one with ``gdb``'s ``bt``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable

from backline.analyzers.dumps.elfcore.modules import LoadedModule
from backline.analyzers.dumps.elfcore.reader import (EM_386, EM_AARCH64, EM_MIPS, EM_PPC64, EM_S390, EM_X86_64,
                                                    ElfCore)
from backline.analyzers.dumps.elfsym import demangle
from backline.analyzers.dumps.model import StackFrame

MAX_FRAMES = 100_000          # physical frames per thread
SCAN_WORDS_FIRST = 120        # words scanned for the caller of the context frame
SCAN_WORDS = 40               # words scanned for later frames (Breakpad's default)
#: ``mov rax, 15 (rt_sigreturn); syscall``: glibc's ``__restore_rt`` on x86-64.
SIGRETURN_X86_64 = bytes.fromhex("48c7c00f0000000f05")
#: ``uc_mcontext.gregs`` inside ``ucontext_t`` (after uc_flags, uc_link, uc_stack) and their order.
UCONTEXT_GREGS_X86_64 = 40
GREGS_X86_64 = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp", "rbx",
                "rdx", "rax", "rcx", "rsp", "rip")
#: The name of a signal trampoline's frame (as gdb prints it).
SIGNAL_FRAME = "<signal handler called>"
#: Functions that start a process or thread: nothing real is above them.
OUTERMOST = frozenset({"_start", "__start", "_dl_start_user", "__clone", "clone", "__clone3",
                       "clone3", "__thread_start", "thread_start", "__clone_internal"})


@dataclass(frozen=True, slots=True)
class Arch:
    pc: str
    sp: str
    fp: str
    dwarf: dict[int, str]
    callee_saved: tuple[str, ...]
    ptr: int
    ra_dwarf: int


ARCHES = {
    EM_X86_64: Arch("rip", "rsp", "rbp",
                    {0: "rax", 1: "rdx", 2: "rcx", 3: "rbx", 4: "rsi", 5: "rdi", 6: "rbp", 7: "rsp",
                     8: "r8", 9: "r9", 10: "r10", 11: "r11", 12: "r12", 13: "r13", 14: "r14",
                     15: "r15", 16: "rip"},
                    ("rbx", "rbp", "r12", "r13", "r14", "r15"), 8, 16),
    EM_386: Arch("eip", "esp", "ebp",
                 {0: "eax", 1: "ecx", 2: "edx", 3: "ebx", 4: "esp", 5: "ebp", 6: "esi", 7: "edi",
                  8: "eip"},
                 ("ebx", "ebp", "esi", "edi"), 4, 8),
    EM_AARCH64: Arch("pc", "sp", "x29",
                     {**{i: f"x{i}" for i in range(31)}, 31: "sp"},
                     tuple(f"x{i}" for i in range(19, 31)), 8, 30),
    # s390x: return address in r14, stack pointer r15, r11 the usual frame pointer
    EM_S390: Arch("pswa", "r15", "r11",
                  {**{i: f"r{i}" for i in range(16)},
                   **{16 + k: f"f{n}" for k, n in enumerate((0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15))}},
                  tuple(f"r{i}" for i in range(6, 16)), 8, 14),
    # ppc64 (ELFv2): return address in the link register (DWARF 65), stack pointer r1
    EM_PPC64: Arch("nip", "r1", "r31", {**{i: f"r{i}" for i in range(32)}, 65: "link"},
                   tuple(f"r{i}" for i in range(14, 32)) + ("r1",), 8, 65),
    # MIPS (o32 and n64): return address in r31 ($ra), stack pointer r29, frame pointer r30
    EM_MIPS: Arch("epc", "r29", "r30", {i: f"r{i}" for i in range(32)},
                  tuple(f"r{i}" for i in range(16, 24)) + ("r28", "r29", "r30"), 8, 31),
}


class Walker:
    """Unwinds the threads of one core with the modules found for it."""

    def __init__(self, core: ElfCore, modules: list[LoadedModule]):
        self.core = core
        self.arch = ARCHES.get(core.machine)
        if self.arch is not None and core.machine == EM_MIPS and not core.is64:
            from dataclasses import replace as _replace
            self.arch = _replace(self.arch, ptr=4)
        self.modules = sorted(modules, key=lambda m: m.base)
        self._bases = [m.base for m in self.modules]
        self._sym_cache: dict[int, list[tuple]] = {}
        self._code_cache: dict[int, bool] = {}
        self._tail_cache: dict[tuple, list[tuple]] = {}
        self._bytes_cache: dict[tuple[int, int], bytes | None] = {}

    # -- helpers ------------------------------------------------------------
    def module_at(self, addr: int) -> LoadedModule | None:
        i = bisect.bisect_right(self._bases, addr) - 1
        if i >= 0 and self.modules[i].contains(addr):
            return self.modules[i]
        return None

    def read_code(self, addr: int, size: int) -> bytes | None:
        """Code bytes at ``addr``: from the core, else from the module's file (memoized)."""
        key = (addr, size)
        if key in self._bytes_cache:
            return self._bytes_cache[key]
        data = self.core.read(addr, size)
        if data is None:
            m = self.module_at(addr)
            if m is not None and m.image is not None:
                data = m.image.read_vaddr(addr - m.bias, size)
        if len(self._bytes_cache) < 200_000:
            self._bytes_cache[key] = data
        return data

    def is_code(self, addr: int) -> bool:
        got = self._code_cache.get(addr)
        if got is not None:
            return got
        m = self.module_at(addr)
        ok = False
        if m is not None:
            if m.exec_ranges:
                ok = any(lo <= addr < hi for lo, hi in m.exec_ranges)
            else:
                ok = self.core.is_executable(addr) or m.image is not None
        else:
            seg = self.core._segment_at(addr)
            ok = seg is not None and bool(seg.flags & 1)
        if len(self._code_cache) < 200_000:
            self._code_cache[addr] = ok
        return ok

    def _after_call(self, ra: int) -> bool:
        """Is the instruction before ``ra`` a call (x86) / ``bl``/``blr`` (arm64)?"""
        machine = self.core.machine
        if ra % {EM_AARCH64: 4, EM_PPC64: 4, EM_S390: 2, EM_MIPS: 4}.get(machine, 1):
            return False                    # misaligned for this instruction set
        if machine == EM_AARCH64:
            raw = self.read_code(ra - 4, 4)
            if raw is None:
                return True
            w = int.from_bytes(raw, "little")
            return (w & 0xFC000000) == 0x94000000 or (w & 0xFFFFFC1F) == 0xD63F0000
        if machine == EM_PPC64:
            raw = self.read_code(ra - 4, 4)
            if raw is None:
                return True
            w = int.from_bytes(raw, self.core.byteorder)
            return (w & 0xFC000003) == 0x48000001 or w in (0x4E800421, 0x4E800021)   # bl, bctrl, blrl
        if machine == EM_S390:
            raw = self.read_code(ra - 6, 6)
            if raw is None:
                return True
            return (raw[0] == 0xC0 and raw[1] & 0x0F == 5) or raw[4] == 0x0D or raw[2] == 0x4D  # brasl, basr, bas
        if machine == EM_MIPS:
            # the call (jal/jalr/bal) sits two instructions back, before its delay slot
            raw = self.read_code(ra - 8, 4)
            if raw is None:
                return True
            w = int.from_bytes(raw, self.core.byteorder)
            op = w >> 26
            return op == 3 or (op == 0 and w & 0x3F == 9) or (op == 1 and (w >> 16) & 0x1F in (17, 16))
        if machine not in (EM_X86_64, EM_386):
            return True
        raw = self.read_code(ra - 7, 7)
        if raw is None:
            return True        # code not available: accept, as Breakpad does without modules
        if raw[2] == 0xE8:                                  # call rel32
            return True
        if raw[5] == 0xFF and (raw[6] >> 3) & 7 == 2:       # call r/m, 2 bytes
            return True
        for k in (4, 1, 0):                                 # call [r+disp8], [rip+disp32], ...
            if raw[k] == 0xFF and (raw[k + 1] >> 3) & 7 == 2:
                return True
        return raw[3] == 0xFF and (raw[4] >> 3) & 7 == 2

    # -- symbolization -------------------------------------------------------
    def symbolize(self, addr: int) -> list[tuple]:
        """``[(module, module_offset, function, function_offset, file, line, inlined)]``,
        innermost first, for the runtime address ``addr`` (already adjusted for callers)."""
        got = self._sym_cache.get(addr)
        if got is not None:
            return got
        m = self.module_at(addr)
        if m is None:
            out = [(None, None, None, None, None, None, False)]
        else:
            off = addr - m.base
            func = foff = None
            frames: list = []
            img = m.image
            if img is not None:
                link = addr - m.bias
                sym = img.symbol_at(link)
                if sym is not None:
                    func, foff = sym
                    func = demangle(func)
                dw = img.dwarf()
                if dw is not None:
                    try:
                        frames = dw.frames_at(link)
                    except Exception:       # malformed DWARF: fall back to the symbol table
                        frames = []
            if frames:
                out = []
                for sf in frames:
                    name = sf.function
                    fo = None
                    if not sf.inlined:
                        if name is None or sf.low_pc is None:
                            name, fo = name or func, foff
                        else:
                            fo = link - sf.low_pc
                    out.append((m.name, off, name, fo, sf.file, sf.line, sf.inlined))
            else:
                out = [(m.name, off, func, foff, None, None, False)]
        if len(self._sym_cache) < 200_000:
            self._sym_cache[addr] = out
        return out

    # -- walking ---------------------------------------------------------------
    def walk(self, registers: dict[str, int], max_frames: int = MAX_FRAMES,
             on_warning: Callable[[str], None] | None = None) -> list[StackFrame]:
        """Frames of one thread, innermost first (inlined frames expanded)."""
        arch = self.arch
        if arch is None or arch.pc not in registers:
            return []
        regs = dict(registers)
        frames: list[StackFrame] = []
        seen: set[tuple[int, int]] = set()
        trust = "context"
        physical = 0
        lookup_adjust = 0
        mask = (1 << (8 * arch.ptr)) - 1
        while physical < max_frames:
            pc = regs.get(arch.pc, 0) & mask
            sp = regs.get(arch.sp, 0) & mask
            if pc == 0 and physical > 0:
                break
            key = (pc, sp)
            if key in seen:
                if on_warning:
                    on_warning(f"stack walk stopped: frame repeats at pc {pc:#x} sp {sp:#x}")
                break
            seen.add(key)
            lookup = pc - lookup_adjust
            if physical > 0 and frames and lookup_adjust:
                last = frames[-1]
                callee_start = (last.instruction - last.function_offset
                                if last.instruction is not None and last.function_offset is not None else None)
                for tf in self._tail_call_frames(pc, last.function, callee_start):
                    frames.append(StackFrame(index=len(frames), trust="tailcall", instruction=tf[0],
                                             module=tf[1], module_offset=tf[2], function=tf[3]))
            trampoline = self.core.machine == EM_X86_64 and \
                self.read_code(pc, len(SIGRETURN_X86_64)) == SIGRETURN_X86_64
            symbols = self.symbolize(pc) if trampoline else self.symbolize(lookup)
            if trampoline:
                lookup = pc
                symbols = [(s[0], s[1], SIGNAL_FRAME, None, None, None, False) for s in symbols[-1:]]
            for j, (mod, moff, func, foff, file, line, inl) in enumerate(symbols):
                frames.append(StackFrame(
                    index=len(frames), trust=trust, instruction=lookup, module=mod,
                    module_offset=moff, function=func, function_offset=foff, file=file, line=line,
                    registers=dict(regs) if not inl else {},     # unwound: what CFI recovered
                    inlined=inl))
            physical += 1
            if frames and frames[-1].function in OUTERMOST:
                break
            nxt = self._step(regs, pc, lookup, physical == 1)
            if nxt is None:
                break
            regs, trust, signal = nxt
            lookup_adjust = 0 if signal else 1
        else:
            if on_warning:
                on_warning(f"stack walk stopped after {max_frames} frames")
        return frames

    def _tail_call_frames(self, ra: int, callee: str | None, callee_start: int | None = None) -> list[tuple]:
        """Functions that tail-called their way from the call at ``ra`` to ``callee``.

        The caller's DWARF call site at return address ``ra`` names the function
        it called; when that is not ``callee``, the chain of tail calls (call
        sites marked ``DW_AT_call_tail_call``) from it to ``callee`` is searched;
        a unique chain becomes frames (``trust="tailcall"``), as gdb shows them.
        """
        if callee is None:
            return []
        if callee_start is not None and self.core.machine in (EM_X86_64, EM_386):
            call = self.read_code(ra - 5, 5)
            if call is not None and call[0] == 0xE8 and \
                    (ra + int.from_bytes(call[1:], "little", signed=True)) & ((1 << 64) - 1) == callee_start:
                return []           # a direct call of the callee itself: no tail call between
        cache = self._tail_cache
        key = (ra, callee)
        if key in cache:
            return cache[key]
        out: list[tuple] = []
        m = self.module_at(ra - 1)
        dw = m.image.dwarf() if m is not None and m.image is not None else None
        if dw is not None:
            from backline.analyzers.dumps.dwarf import call_sites_at
            link = ra - m.bias
            site = next((s for s in call_sites_at(dw, link - 1) if s.return_pc == link), None)
            if site is not None and site.target and site.target != callee:
                paths: list[list[tuple[str, int | None]]] = []
                queue: list[tuple[str, int | None, list]] = [(site.target, site.target_low_pc, [])]
                while queue and len(paths) < 2:
                    name, low, path = queue.pop(0)
                    if len(path) >= 4:
                        continue
                    low = low if low is not None else m.image.address_of(name)
                    if low is None:
                        continue
                    for s in call_sites_at(dw, low):
                        if not s.tail or not s.target:
                            continue
                        step = path + [(name, s.pc if s.pc is not None else s.return_pc)]
                        if s.target == callee:
                            if not paths or paths[0] != step:
                                paths.append(step)
                        elif all(s.target != p[0] for p in step):
                            queue.append((s.target, s.target_low_pc, step))
                if len(paths) == 1:
                    for name, pc in reversed(paths[0]):
                        # as gdb: the frame's pc is the tail call's return pc; its name is the
                        # innermost function there (an inlined body when there is one)
                        addr = pc + m.bias - 1 if pc is not None else None
                        if addr is not None:
                            name = self.symbolize(addr)[0][2] or name
                        out.append((addr, m.name, (addr - m.base) if addr is not None else None, name))
        if len(cache) < 100_000:
            cache[key] = out
        return out

    def _step(self, regs: dict[str, int], pc: int, lookup: int, first: bool):
        arch = self.arch
        core = self.core
        sp = regs.get(arch.sp, 0)
        # 0. a signal trampoline: the interrupted registers are in the ucontext on the stack
        if core.machine == EM_X86_64 and self.read_code(pc, len(SIGRETURN_X86_64)) == SIGRETURN_X86_64:
            raw = core.read(sp + UCONTEXT_GREGS_X86_64, 8 * len(GREGS_X86_64))
            if raw is not None:
                new = {name: int.from_bytes(raw[8 * i:8 * i + 8], "little")
                       for i, name in enumerate(GREGS_X86_64)}
                if new["rip"] and new["rsp"]:
                    return new, "signal", True
        # 1. CFI
        m = self.module_at(lookup)
        if m is not None and m.image is not None:
            rules = m.image.rules_for(lookup - m.bias)
            if rules is not None and rules.cfa is not None:
                cfa_name = arch.dwarf.get(rules.cfa[0])
                if cfa_name is not None and cfa_name in regs:
                    cfa = regs[cfa_name] + rules.cfa[1]
                    new: dict[str, int] = {r: regs[r] for r in arch.callee_saved if r in regs}
                    ok = True
                    for dreg, (kind, val) in rules.saved.items():
                        name = arch.dwarf.get(dreg) if dreg != rules.ra_register else "__ra"
                        if name is None:
                            continue
                        if kind == "offset":
                            v = core.read_ptr(cfa + val)
                            if v is None:
                                if name == "__ra":
                                    ok = False
                                continue
                            new[name] = v
                        elif kind == "val_offset":
                            new[name] = cfa + val
                        elif kind == "register":
                            src = arch.dwarf.get(val)
                            if src in regs:
                                new[name] = regs[src]
                            else:
                                new.pop(name, None)     # saved in a register we do not have
                                if name == "__ra":
                                    ok = False
                        elif kind == "undefined":
                            new.pop(name, None)
                            if name == "__ra":
                                return None        # outermost frame (e.g. _start, clone3)
                    if ok:
                        ra = new.pop("__ra", None)
                        if ra is None:
                            ra_name = arch.dwarf.get(rules.ra_register)
                            ra = regs.get(ra_name) if ra_name else None
                        # the caller's stack pointer is the CFA unless the CFI restores it
                        # (s390x: CFA = sp + 160, r15 itself is saved in the frame)
                        sp_rule = next((k for d, (k, _v) in rules.saved.items()
                                        if arch.dwarf.get(d) == arch.sp), None)
                        if sp_rule not in ("offset", "val_offset", "register") or arch.sp not in new:
                            new[arch.sp] = cfa
                        if ra is not None and self._plausible(ra, cfa, sp, strict=not first):
                            new[arch.pc] = ra
                            return new, "cfi", False
        # 1b. MIPS functions without CFI: read the prologue (stack adjustment and $ra save)
        if core.machine == EM_MIPS and m is not None and m.image is not None:
            got = self._mips_prologue(regs, lookup, m)
            if got is not None:
                return got, "prologue", False
        # 2. frame pointer
        fp = regs.get(arch.fp)
        if fp and fp >= sp and fp - sp < 0x1000000:
            p = arch.ptr
            saved_fp = core.read_ptr(fp)
            ra = core.read_ptr(fp + p)
            if saved_fp is not None and ra is not None:
                new_sp = fp + 2 * p
                if self._plausible(ra, new_sp, sp, strict=True) and (saved_fp == 0 or saved_fp > fp):
                    new = {r: regs[r] for r in arch.callee_saved if r in regs}
                    new[arch.fp] = saved_fp
                    new[arch.sp] = new_sp
                    new[arch.pc] = ra
                    return new, "frame_pointer", False
        # 3. scan
        limit = SCAN_WORDS_FIRST if first else SCAN_WORDS
        p = arch.ptr
        start = sp
        for i in range(limit):
            addr = start + i * p
            val = core.read_ptr(addr)
            if val is None:
                break
            if self.is_code(val) and self._after_call(val):
                new = {r: regs[r] for r in arch.callee_saved if r in regs}
                new[arch.sp] = addr + p
                new[arch.pc] = val
                return new, "scan", False
        return None

    def _mips_prologue(self, regs: dict[str, int], lookup: int, m: LoadedModule):
        """Unwind a MIPS frame from its prologue: ``[d]addiu sp,sp,-N`` and ``s[wd] ra,off(sp)``
        between the function's start and ``lookup`` (as debuggers do when there is no CFI)."""
        sym = m.image.symbol_at(lookup - m.bias)
        if sym is None or sym[1] > 0x4000:
            return None
        start = lookup - sym[1]
        code = self.read_code(start, min(sym[1] + 4, 256) & ~3)
        if not code:
            return None
        frame = None
        saved: dict[str, int] = {}
        bo = self.core.byteorder
        for k in range(0, len(code) - 3, 4):
            w = int.from_bytes(code[k:k + 4], bo)
            op, rs, rt, imm = w >> 26, (w >> 21) & 31, (w >> 16) & 31, w & 0xFFFF
            simm = imm - 0x10000 if imm & 0x8000 else imm
            if op in (9, 25) and rs == 29 and rt == 29 and simm < 0 and frame is None:   # [d]addiu sp,sp,-N
                frame = -simm
            elif op in (43, 63) and rs == 29 and rt in (31, 30, 28, 16, 17, 18, 19, 20, 21, 22, 23):
                saved.setdefault(f"r{rt}", simm)                                          # s[wd] reg,off(sp)
        if frame is None or "r31" not in saved:
            return None
        sp = regs.get("r29")
        if sp is None:
            return None
        ra = self.core.read_ptr(sp + saved["r31"])
        new_sp = sp + frame
        if ra is None or not self._plausible(ra, new_sp, sp, strict=True):
            return None
        new = {r: regs[r] for r in self.arch.callee_saved if r in regs}
        for name, off in saved.items():
            if name != "r31":
                v = self.core.read_ptr(sp + off)
                if v is not None:
                    new[name] = v
        new["r29"] = new_sp
        new[self.arch.pc] = ra
        return new

    def _plausible(self, ra: int, new_sp: int, old_sp: int, strict: bool) -> bool:
        if ra == 0:
            return False
        if new_sp < old_sp or (strict and new_sp == old_sp):
            return False
        return self.is_code(ra)
