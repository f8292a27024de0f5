"""amd64 caller recovery: STACK CFI, PE unwind info (``.pdata``), ``rbp`` chain, then stack scanning."""

from __future__ import annotations

from backline.analyzers.dumps.minidump.context import CpuContext
from backline.analyzers.dumps.stackwalk import ModuleMap, StackMemory, WalkedFrame, callee_regs, cfi_step

CALLEE_SAVED = ("rbx", "rbp", "r12", "r13", "r14", "r15")
MAX_GAP = 128 * 1024
SCAN_WORDS = 40
_M64 = (1 << 64) - 1


def is_non_canonical(p: int) -> bool:
    return 0x7FFFFFFFFFFF < p < 0xFFFF800000000000


def _by_frame_pointer(last: WalkedFrame, memory: StackMemory, os_short: str) -> CpuContext | None:
    c = last.context
    bp, sp = c.get("rbp"), c.get("rsp")
    if bp is None or sp is None or bp >= _M64 - 16:
        return None
    if os_short == "windows":        # MSVC code does not keep rbp chains (Breakpad, rust-minidump 0.25)
        return None
    for off in (0,):
        ip = memory.read(bp + off + 8)
        caller_bp = memory.read(bp + off)
        if ip is None or caller_bp is None:
            return None
        caller_sp = bp + off + 16
        if caller_sp <= bp or caller_bp < caller_sp:
            continue
        if memory.read(caller_bp) is None:
            return None
        if is_non_canonical(ip):
            continue
        if caller_sp <= sp or memory.read(caller_sp) is None:
            continue
        return CpuContext("amd64", {"rip": ip, "rsp": caller_sp, "rbp": caller_bp},
                          frozenset(("rip", "rsp", "rbp")))
    return None


def _by_scan(last: WalkedFrame, memory: StackMemory, modules: ModuleMap) -> CpuContext | None:
    c = last.context
    if not c.has("rsp"):
        return None
    last_bp = c.get("rbp")
    sp = c.regs["rsp"]
    words = SCAN_WORDS * 4 if last.trust == "context" else SCAN_WORDS
    for i in range(words):
        addr = sp + i * 8
        if addr > _M64:
            return None
        ip = memory.read(addr)
        if ip is None:
            return None
        if ip == 0 or is_non_canonical(ip) or not modules.instruction_seems_valid(ip):
            continue
        caller_sp = addr + 8
        caller_bp = None
        if last_bp is not None and i > 0:
            bp_addr = addr - 8
            bp = memory.read(bp_addr)
            if bp is None:
                return None
            if last_bp == bp_addr and bp > addr and bp - bp_addr <= MAX_GAP:
                if memory.read(bp) is not None:
                    caller_bp = bp
            elif last_bp >= caller_sp:
                caller_bp = last_bp
        regs = {"rip": ip, "rsp": caller_sp, "rbp": caller_bp or 0}
        valid = ("rip", "rsp", "rbp") if caller_bp is not None else ("rip", "rsp")
        return CpuContext("amd64", regs, frozenset(valid))
    return None


def _by_pdata(last: WalkedFrame, memory: StackMemory, modules: ModuleMap) -> CpuContext | None:
    """Undo the prolog with the module's own x64 unwind info (no symbol file needed)."""
    if last.module_index is None:
        return None
    img = modules.pe_image(last.module_index)
    if img is None or not img.has_unwind_info:
        return None
    rva = last.instruction - modules.modules[last.module_index].base
    out = img.unwind(rva, callee_regs(last), memory.read, first=last.trust == "context")
    if out is None:
        return None
    return CpuContext("amd64", out, frozenset(out))


def caller(frames: list[WalkedFrame], memory: StackMemory, modules: ModuleMap,
           os_short: str) -> tuple[CpuContext, str] | None:
    last = frames[-1]
    ctx = cfi_step(frames, memory, modules, "rip", "rsp", CALLEE_SAVED)
    if ctx is not None:
        return ctx, "cfi"
    ctx = _by_pdata(last, memory, modules)
    if ctx is not None:
        return ctx, "cfi"           # call frame information, from the image instead of a .sym file
    ctx = _by_frame_pointer(last, memory, os_short)
    if ctx is not None:
        return ctx, "frame_pointer"
    ctx = _by_scan(last, memory, modules)
    if ctx is not None:
        return ctx, "scan"
    return None
