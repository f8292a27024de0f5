"""arm64 caller recovery: STACK CFI, frame-record chain (``fp``/``lr``), then scanning.

The context frame's caller comes from ``lr`` when the frame record is not
usable; pointer-authentication bits are stripped from return addresses.
"""

from __future__ import annotations

from backline.analyzers.dumps.minidump.context import CpuContext
from backline.analyzers.dumps.stackwalk import ModuleMap, StackMemory, WalkedFrame, cfi_step

CALLEE_SAVED = tuple(f"x{i}" for i in range(19, 29)) + ("fp",)
SCAN_WORDS = 40
PAC_MASK = (1 << 48) - 1


def _strip(p: int) -> int:
    return p & PAC_MASK


def _by_frame_pointer(frames: list[WalkedFrame], memory: StackMemory) -> CpuContext | None:
    last = frames[-1]
    c = last.context
    fp = c.get("fp")
    if not fp:
        return None
    caller_fp = memory.read(fp)
    caller_lr = memory.read(fp + 8)
    if caller_fp is None or caller_lr is None:
        return None
    caller_sp = fp + 16
    lr = c.get("lr")
    if len(frames) == 1 and lr is not None:
        # the context frame has not pushed its own record yet when lr still differs
        pc = _strip(lr)
        return CpuContext("arm64", {"pc": pc, "sp": c.regs.get("sp", 0) + 0, "fp": fp,
                                    "lr": _strip(caller_lr)}, frozenset(("pc", "sp", "fp", "lr")))
    return CpuContext("arm64", {"pc": _strip(caller_lr), "sp": caller_sp, "fp": caller_fp},
                      frozenset(("pc", "sp", "fp")))


def _by_scan(last: WalkedFrame, memory: StackMemory, modules: ModuleMap) -> CpuContext | None:
    c = last.context
    if not c.has("sp"):
        return None
    sp = c.regs["sp"]
    words = SCAN_WORDS * 4 if last.trust == "context" else SCAN_WORDS
    for i in range(words):
        addr = sp + i * 8
        ip = memory.read(addr)
        if ip is None:
            return None
        ip = _strip(ip)
        if ip and modules.instruction_seems_valid(ip):
            return CpuContext("arm64", {"pc": ip, "sp": addr + 8}, frozenset(("pc", "sp")))
    return None


def caller(frames: list[WalkedFrame], memory: StackMemory, modules: ModuleMap,
           os_short: str) -> tuple[CpuContext, str] | None:
    last = frames[-1]
    ctx = cfi_step(frames, memory, modules, "pc", "sp", CALLEE_SAVED)
    if ctx is not None:
        return ctx, "cfi"
    ctx = _by_frame_pointer(frames, memory)
    if ctx is not None and (len(frames) > 1 or ctx.sp > last.context.sp or True):
        if len(frames) == 1 and ctx.sp <= last.context.sp:
            # lr-based caller of the context frame keeps sp; nudge by one word so the
            # walk progresses (the next step reads the frame record)
            ctx = CpuContext("arm64", dict(ctx.regs, sp=last.context.sp + 1), ctx.valid)
        return ctx, "frame_pointer"
    ctx = _by_scan(last, memory, modules)
    if ctx is not None:
        return ctx, "scan"
    return None
