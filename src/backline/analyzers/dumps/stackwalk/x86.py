"""x86 caller recovery: STACK WIN, STACK CFI, ``ebp`` chain, then stack scanning."""

from __future__ import annotations

from backline.analyzers.dumps.minidump.context import CpuContext
from backline.analyzers.dumps.stackwalk import ModuleMap, StackMemory, WalkedFrame, callee_regs, cfi_step
from backline.analyzers.dumps.stackwalk.cfi import win_fpo, win_program

CALLEE_SAVED = ("ebp", "ebx", "edi", "esi")
MAX_GAP = 128 * 1024
SCAN_WORDS = 40


def _by_win(frames: list[WalkedFrame], memory: StackMemory, modules: ModuleMap) -> CpuContext | None:
    last = frames[-1]
    if last.module_index is None:
        return None
    sym = modules.symbols(last.module_index)
    if sym is None:
        return None
    info = sym.win_info(last.instruction - modules.modules[last.module_index].base)
    if info is None:
        return None
    regs = callee_regs(last)
    grand = frames[-2].symbol.parameter_size if len(frames) > 1 and frames[-2].symbol else 0
    if info.type == 4 and info.program is not None:
        out = win_program(info, regs, memory.read, grand)
    elif info.type == 0 or info.program is None:
        out = win_fpo(info, regs, memory.read, grand, len(frames) == 1)
    else:
        out = None
    if out is None:
        return None
    new = {r: regs[r] for r in CALLEE_SAVED if r in regs}
    new.update(out)
    if "eip" not in new:
        new["eip"] = regs.get("eip", 0)
    if "esp" not in new:
        new["esp"] = regs.get("esp", 0)
    return CpuContext("x86", new, frozenset(new))


def _by_frame_pointer(last: WalkedFrame, memory: StackMemory) -> CpuContext | None:
    ebp = last.context.get("ebp")
    if ebp is None or ebp >= 0xFFFFFFFF - 8:
        return None
    ip = memory.read(ebp + 4)
    bp = memory.read(ebp)
    if ip is None or bp is None:
        return None
    return CpuContext("x86", {"eip": ip, "esp": ebp + 8, "ebp": bp}, frozenset(("eip", "esp", "ebp")))


def _by_scan(last: WalkedFrame, memory: StackMemory, modules: ModuleMap) -> CpuContext | None:
    c = last.context
    if not c.has("esp"):
        return None
    last_bp = c.get("ebp")
    sp = c.regs["esp"]
    words = SCAN_WORDS * 4 if last.trust == "context" else SCAN_WORDS
    for i in range(words):
        addr = sp + i * 4
        if addr > 0xFFFFFFFF:
            return None
        ip = memory.read(addr)
        if ip is None:
            return None
        if ip == 0 or not modules.instruction_seems_valid(ip):
            continue
        caller_sp = addr + 4
        caller_bp = None
        if i > 0:
            bp_addr = addr - 4
            bp = memory.read(bp_addr)
            if bp is None:
                return None
            if bp > addr and bp - bp_addr <= MAX_GAP:
                if memory.read(bp) is not None:
                    caller_bp = bp
            elif last_bp is not None and last_bp >= caller_sp and memory.read(last_bp) is not None:
                caller_bp = last_bp
        regs = {"eip": ip, "esp": caller_sp}
        if caller_bp is not None:
            regs["ebp"] = caller_bp
        else:
            regs["ebp"] = 0
            return CpuContext("x86", regs, frozenset(("eip", "esp")))
        return CpuContext("x86", regs, frozenset(regs))
    return None


def caller(frames: list[WalkedFrame], memory: StackMemory, modules: ModuleMap,
           os_short: str) -> tuple[CpuContext, str] | None:
    last = frames[-1]
    if last.context.has("esp"):
        ctx = _by_win(frames, memory, modules) or cfi_step(frames, memory, modules, "eip", "esp", CALLEE_SAVED)
        if ctx is not None:
            return ctx, "cfi"
    ctx = _by_frame_pointer(last, memory)
    if ctx is not None:
        return ctx, "frame_pointer"
    ctx = _by_scan(last, memory, modules)
    if ctx is not None:
        return ctx, "scan"
    return None
