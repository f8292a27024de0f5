"""arm64 caller recovery (Breakpad's rules): STACK CFI, frame records (the caller's pc is the
callee's ``lr``; ``[fp]`` and ``[fp+8]`` are the caller's fp and lr), then stack scanning.  Pointer-authentication bits are stripped from recovered
pointers with a mask just above the highest module address (at least 2^47).

CFI register names ``x29``/``x30`` are aliases of ``fp``/``lr``.
"""

from __future__ import annotations

from backline.analyzers.dumps.minidump.context import CpuContext
from backline.analyzers.dumps.stackwalk import ModuleMap, StackMemory, WalkedFrame, callee_regs
from backline.analyzers.dumps.stackwalk.cfi import cfi_unwind

CALLEE_SAVED = tuple(f"x{i}" for i in range(19, 29)) + ("fp",)
SCAN_WORDS = 40
_M64 = (1 << 64) - 1


def is_non_canonical(p: int) -> bool:
    return 0x7FFFFFFFFFFF < p < 0xFFFF800000000000


def pac_mask(modules: ModuleMap) -> int:
    top = max([(1 << 47) - 1] + [m.base + m.size for m in modules.modules])
    return (1 << top.bit_length()) - 1


def _ctx(regs: dict[str, int], valid: set[str]) -> CpuContext:
    if "fp" in regs:
        regs["x29"] = regs["fp"]
        if "fp" in valid:
            valid.add("x29")
    if "lr" in regs:
        regs["x30"] = regs["lr"]
        if "lr" in valid:
            valid.add("x30")
    return CpuContext("arm64", regs, frozenset(valid))


def _by_cfi(frames: list[WalkedFrame], memory: StackMemory, modules: ModuleMap) -> CpuContext | None:
    last = frames[-1]
    if last.module_index is None or not last.context.has("sp"):
        return None
    sym = modules.symbols(last.module_index)
    if sym is None:
        return None
    rules = sym.cfi_rules(last.instruction - modules.modules[last.module_index].base)
    if rules is None:
        return None
    regs = callee_regs(last)
    for a, b in (("x29", "fp"), ("x30", "lr")):
        if b in regs:
            regs.setdefault(a, regs[b])
    out = cfi_unwind(rules, regs, memory.read, 8)
    if out is None:
        return None
    mask = pac_mask(modules)
    new = {r: regs[r] for r in CALLEE_SAVED if r in regs}
    valid = set(new)
    for k, v in out.items():
        name = {"x29": "fp", "x30": "lr"}.get(k.lstrip("-"), k.lstrip("-"))
        if k.startswith("-"):
            new.pop(name, None)
            valid.discard(name)
        elif not k.startswith("."):
            new[name] = v
            valid.add(name)
    new["sp"], new["pc"] = out[".cfa"], out[".ra"] & mask
    valid.update(("sp", "pc"))
    for r in ("lr", "fp"):
        if r in new:
            new[r] &= mask
    return _ctx(new, valid)


def _lr(frames: list[WalkedFrame], memory: StackMemory, mask: int) -> int:
    """The callee's link register; when unknown, recovered from its callee's frame record if that
    record links to this frame (Breakpad's CorrectRegLRByFramePointer); else 0."""
    last = frames[-1].context
    lr = last.get("lr")
    if lr is not None:
        return lr
    fp, sp = last.regs.get("fp", 0), last.regs.get("sp", 0)
    if len(frames) < 2 or fp <= sp:
        return 0
    callee_fp = frames[-2].context.regs.get("fp", 0)
    if not callee_fp or memory.read(callee_fp) != fp:
        return 0
    v = memory.read(callee_fp + 8)
    return (v or 0) & mask


def _by_frame_pointer(frames: list[WalkedFrame], memory: StackMemory, modules: ModuleMap) -> CpuContext | None:
    """Breakpad's rule: the caller's pc is the callee's lr; the caller's lr and fp come from the
    frame record at fp (``[fp+8]``, ``[fp]``); sp = fp + 16."""
    last = frames[-1]
    c = last.context
    fp, sp = c.regs.get("fp", 0), c.regs.get("sp", 0)
    if fp >= _M64 - 16:
        return None
    mask = pac_mask(modules)
    caller_fp = caller_lr = 0
    if fp:
        caller_fp, caller_lr = memory.read(fp), memory.read(fp + 8)
        if caller_fp is None or caller_lr is None:
            return None
    caller_sp = fp + 16 if fp else sp
    pc = _lr(frames, memory, mask) & mask
    return _ctx({"pc": pc, "fp": caller_fp, "sp": caller_sp, "lr": caller_lr & mask},
                {"pc", "fp", "sp", "lr"})


def _by_scan(last: WalkedFrame, memory: StackMemory, modules: ModuleMap) -> CpuContext | None:
    c = last.context
    if not c.has("sp"):
        return None
    sp = c.regs["sp"]
    words = SCAN_WORDS * 4 if last.trust == "context" else SCAN_WORDS
    for i in range(words):
        addr = sp + i * 8
        pc = memory.read(addr)
        if pc is None:
            return None
        if pc and not is_non_canonical(pc) and modules.instruction_seems_valid(pc):
            return _ctx({"pc": pc, "sp": addr + 8}, {"pc", "sp"})
    return None


def caller(frames: list[WalkedFrame], memory: StackMemory, modules: ModuleMap,
           os_short: str) -> tuple[CpuContext, str] | None:
    last = frames[-1]
    ctx = _by_cfi(frames, memory, modules)
    if ctx is not None:
        return ctx, "cfi"
    ctx = _by_frame_pointer(frames, memory, modules)
    if ctx is not None:
        return ctx, "frame_pointer"
    ctx = _by_scan(last, memory, modules)
    if ctx is not None:
        return ctx, "scan"
    return None
