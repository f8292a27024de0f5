"""The automatic analysis (the debugger's ``!analyze``) over any :class:`CrashReport`.

:func:`analyze_crash` fills ``problem_class``, ``blamed_frame``, ``bucket_id``,
``signature`` and ``deadlocks``.  It works on minidumps, ELF cores and text
traces alike; what it can use depends on what the reader put in the report
(``extra["crashing_instruction"]`` from :func:`disassemble`, threads' ``wait``).

Problem classes: ``NULL_POINTER_READ``, ``NULL_POINTER_WRITE``,
``NULL_POINTER_EXECUTE``, ``INVALID_POINTER_READ``, ``INVALID_POINTER_WRITE``,
``EXECUTE_NON_CODE``, ``STACK_OVERFLOW``, ``STACK_BUFFER_OVERRUN`` (fast fail),
``HEAP_CORRUPTION``, ``ABORT``, ``DIVIDE_BY_ZERO``, ``ILLEGAL_INSTRUCTION``,
``BREAKPOINT``, ``CPP_EXCEPTION``, ``INVALID_PARAMETER``, ``UNHANDLED_EXCEPTION`` (text traces),
``DEADLOCK``, ``HANG``, ``NO_EXCEPTION`` and ``UNKNOWN``.

>>> from backline.analyzers.dumps.model import *
>>> th = CrashThread(7, (StackFrame(0, "context", 0x401f26, module="libc.so.6", function="memcpy"),
...                      StackFrame(1, "cfi", 0x401fcd, module="app", function="copy(char*)")), crashed=True)
>>> rep = analyze_crash(CrashReport("elf_core", threads=(th,), crashing_thread=0,
...                     exception=CrashException("SIGSEGV", code=11, address=0)))
>>> rep.problem_class, rep.blamed_frame, rep.bucket_id
('NULL_POINTER_READ', 1, 'NULL_POINTER_READ_SIGSEGV_app!copy')
"""

from __future__ import annotations

import dataclasses
import fnmatch
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

from backline.analyzers.dumps.hang import find_deadlocks
from backline.analyzers.dumps.model import CrashReport, CrashThread, StackFrame, WaitInfo
from backline.analyzers.dumps.signature import normalize_function, socorro_signature

NULL_LIMIT = 0x10000          # the first 64 KiB are never mapped (Windows) / mmap_min_addr (Linux)
STACK_GUARD = 0x10000
_WAIT_PRIORITY = ("critical_section", "mutex", "join", "condition", "handle", "futex", "file_lock", "sleep", "io")
_ABORT_FUNCTIONS = {"abort", "raise", "gsignal", "__assert_fail", "__assert_rtn", "_assert", "_wassert",
                    "__pthread_kill", "pthread_kill", "__pthread_kill_implementation", "__abort_with_payload",
                    "__pthread_kill_internal", "std::terminate", "__cxa_throw"}


def _data(name: str) -> list[str]:
    text = resources.files("backline.analyzers.dumps").joinpath(f"data/{name}").read_text("utf-8")
    return [l.strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]


@lru_cache(maxsize=None)
def _system_patterns() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    mods, funcs, files = [], [], []
    for line in _data("system_modules.txt"):
        kind, _, pat = line.partition(":")
        {"module": mods, "function": funcs, "file": files}.get(kind, []).append(pat.strip())
    return tuple(mods), tuple(funcs), tuple(files)


@lru_cache(maxsize=None)
def _wait_functions() -> tuple[tuple[str, str], ...]:
    out = []
    for line in _data("wait_functions.txt"):
        kind, _, fn = line.partition(" ")
        out.append((kind, fn.strip()))
    return tuple(out)


def is_system_frame(frame: StackFrame) -> bool:
    """Whether a frame belongs to the OS or a language runtime (see ``data/system_modules.txt``)."""
    mods, funcs, files = _system_patterns()
    if frame.module and any(fnmatch.fnmatch(frame.module.lower(), p.lower()) for p in mods):
        return True
    if frame.language != "native":
        if frame.function and frame.function.startswith(funcs):
            return True
        if frame.file and any(s in frame.file for s in files):
            return True
    return False


def blamed_frame(thread: CrashThread | None) -> int | None:
    """Index of the first frame not in a system/runtime module (frames with no module at all
    are skipped too, unless nothing else is left)."""
    if thread is None or not thread.frames:
        return None
    for f in thread.frames:
        if f.language == "native" and f.module is None:
            continue
        if not is_system_frame(f):
            return f.index
    return thread.frames[0].index


# ------------------------------------------------------------------ disassembly

def disassemble(code: bytes, address: int, cpu: str,
                registers: dict[str, int] | None = None) -> dict[str, Any] | None:
    """Decode the instruction at ``address`` with capstone.

    Returns ``{"address", "text", "bytes", "regs_read", "regs_written", "memory_access"}``
    (``memory_access`` is ``"read"``, ``"write"``, ``"read_write"`` or ``None``), or ``None``
    when the bytes do not decode.

    >>> disassemble(bytes.fromhex("c7042545000000050000 00".replace(" ", "")), 0x400000, "amd64")["text"]
    'mov dword ptr [0x45], 5'
    """
    try:
        import capstone
        from capstone import x86_const
    except ImportError:        # pragma: no cover - capstone is a dependency
        return None
    if cpu == "x86":
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_32)
    elif cpu == "amd64":
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    elif cpu == "arm64":
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    else:
        return None
    md.detail = True
    insn = next(md.disasm(bytes(code[:16]), address, 1), None)
    if insn is None:
        return None
    try:
        rr, rw = insn.regs_access()
        regs_read = sorted({insn.reg_name(r) for r in rr})
        regs_written = sorted({insn.reg_name(r) for r in rw})
    except capstone.CsError:
        regs_read, regs_written = [], []
    access = None
    effective = None
    accesses: list[dict[str, Any]] = []
    if cpu in ("x86", "amd64"):
        acc = 0
        mask = (1 << (32 if cpu == "x86" else 64)) - 1
        for op in insn.operands:
            if op.type == x86_const.X86_OP_MEM:
                acc |= op.access
                if insn.mnemonic.startswith("lea"):
                    continue                       # address arithmetic, no memory access
                ea = _effective_address(insn, op.mem, registers, mask) if registers is not None else None
                if effective is None:
                    effective = ea
                base = insn.reg_name(op.mem.base) if op.mem.base else None
                accesses.append({"address": ea, "size": op.size,
                                 "access": {1: "read", 2: "write", 3: "read_write"}.get(op.access),
                                 # a null base register: a null pointer plus an offset
                                 "null_base": bool(base and registers is not None and registers.get(base) == 0)})
        if insn.mnemonic.startswith(("push", "call")):
            acc |= capstone.CS_AC_WRITE
        if insn.mnemonic.startswith(("pop", "ret")):
            acc |= capstone.CS_AC_READ
        access = {1: "read", 2: "write", 3: "read_write"}.get(acc)
    text = f"{insn.mnemonic} {insn.op_str}".strip()
    return {"address": address, "text": text, "bytes": bytes(insn.bytes).hex(),
            "regs_read": regs_read, "regs_written": regs_written, "memory_access": access,
            "effective_address": effective, "memory_accesses": accesses}


def disassemble_window(code: bytes, address: int, cpu: str, count: int = 6) -> list[dict[str, Any]]:
    """Up to ``count`` instructions from ``address`` (WinDbg's ``u``):
    ``[{"address", "text", "bytes", "mnemonic", "op_str"}]``.

    >>> [i["text"] for i in disassemble_window(bytes.fromhex("5589e5c3"), 0x1000, "x86")]
    ['push ebp', 'mov ebp, esp', 'ret']
    """
    try:
        import capstone
    except ImportError:        # pragma: no cover - capstone is a dependency
        return []
    arch = {"x86": (capstone.CS_ARCH_X86, capstone.CS_MODE_32),
            "amd64": (capstone.CS_ARCH_X86, capstone.CS_MODE_64),
            "arm64": (capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)}.get(cpu)
    if arch is None:
        return []
    md = capstone.Cs(*arch)
    return [{"address": i.address, "text": f"{i.mnemonic} {i.op_str}".strip(), "bytes": bytes(i.bytes).hex(),
             "mnemonic": i.mnemonic, "op_str": i.op_str}
            for i in md.disasm(bytes(code[:count * 16]), address, count)]


def _effective_address(insn, mem, registers: dict[str, int], mask: int) -> int | None:
    """``base + index * scale + disp`` from the frame's registers (None if one is unknown)."""
    total = mem.disp
    for reg, scale in ((mem.base, 1), (mem.index, mem.scale)):
        if reg == 0:
            continue
        name = insn.reg_name(reg)
        if name in ("rip", "eip"):
            total += insn.address + insn.size
            continue
        if name not in registers:
            return None
        total += registers[name] * scale
    if mem.segment != 0 and insn.reg_name(mem.segment) in ("fs", "gs"):
        return None
    return total & mask


# ------------------------------------------------------------------ problem class

def adjusted_address(report: CrashReport) -> dict[str, Any] | None:
    """rust-minidump's ``adjusted_address``: a null pointer in disguise (the accessed operand's
    base register is 0: ``{"kind": "null-pointer", "offset"}``), else the real non-canonical
    address behind a general-protection fault on amd64 (``{"kind": "non-canonical", "address"}``)."""
    ci = (report.extra or {}).get("crashing_instruction") or {}
    accesses = [a for a in ci.get("memory_accesses", []) if a.get("address") is not None]
    for a in accesses:
        if a.get("null_base"):
            return {"kind": "null-pointer", "offset": a["address"]}
    exc = report.exception
    if report.cpu != "amd64" or exc is None or not accesses:
        return None
    t = exc.type or ""
    gpf = (("ACCESS_VIOLATION" in t and exc.address == 0xFFFFFFFFFFFFFFFF)
           or (t.startswith("SIGSEGV") and "SI_KERNEL" in t and not exc.address)
           or "EXC_I386_GPFLT" in t)
    if gpf:
        for a in accesses:
            if 0x0000_8000_0000_0000 <= a["address"] <= 0xFFFF_7FFF_FFFF_FFFF:
                return {"kind": "non-canonical", "address": a["address"]}
    return None


def _in_module(report: CrashReport, address: int) -> bool:
    return any(m.base <= address < m.base + m.size for m in report.modules if m.size and not m.unloaded)


def problem_class(report: CrashReport) -> str:
    exc = report.exception
    if exc is None:
        if report.deadlocks:
            return "DEADLOCK"
        return "HANG" if any(t.wait for t in report.threads) else "NO_EXCEPTION"
    t = exc.type or ""
    if report.source_format not in ("minidump", "elf_core") and exc.code is None and not t.startswith(("SIG", "EXCEPTION_")):
        return "UNHANDLED_EXCEPTION"
    th = report.crashed_thread
    ip = th.frames[0].instruction if th and th.frames else None
    sp = None
    if th and th.frames:
        regs = th.frames[0].registers or th.registers
        sp = regs.get("rsp", regs.get("esp", regs.get("sp")))
    ins = (report.extra or {}).get("crashing_instruction") or {}
    addr = exc.address
    if "STACK_OVERFLOW" in t:
        return "STACK_OVERFLOW"
    if "STACK_BUFFER_OVERRUN" in t or "FAST_FAIL" in t or "FAIL_FAST" in t:
        return "STACK_BUFFER_OVERRUN"
    if "HEAP_CORRUPTION" in t:
        return "HEAP_CORRUPTION"
    if t.startswith("SIGABRT") or "ASSERTION" in t or "abort" in t.lower():
        return "ABORT"
    if "DIVIDE_BY_ZERO" in t or t.startswith("SIGFPE"):
        return "DIVIDE_BY_ZERO"
    if "ILLEGAL_INSTRUCTION" in t or "PRIV_INSTRUCTION" in t or t.startswith("SIGILL") or "BAD_INSTRUCTION" in t:
        return "ILLEGAL_INSTRUCTION"
    if "BREAKPOINT" in t or t.startswith("SIGTRAP"):
        return "BREAKPOINT"
    if "CPP_EXCEPTION" in t:
        return "CPP_EXCEPTION"
    if "INVALID_PARAMETER" in t:
        return "INVALID_PARAMETER"          # CRT invalid parameter handler (_invalid_parameter)
    notes = str((report.extra or {}).get("annotations", ""))
    if "abort() called" in notes:
        return "ABORT"
    if th is not None and any((f.function or "").split("(")[0] in _ABORT_FUNCTIONS for f in th.frames[:8]):
        return "ABORT"
    if "ACCESS_VIOLATION" in t or t.startswith(("SIGSEGV", "SIGBUS", "EXC_BAD_ACCESS")):
        if addr is None:
            return "INVALID_POINTER_READ"
        if t.endswith("_EXEC") or (ip is not None and addr == ip) or (ip is not None and not _in_module(report, ip) and report.modules):
            return "NULL_POINTER_EXECUTE" if addr < NULL_LIMIT else "EXECUTE_NON_CODE"
        if sp is not None and sp - STACK_GUARD <= addr < sp + 0x1000 and not t.endswith(("_READ", "_WRITE")):
            return "STACK_OVERFLOW"
        if addr == 0xFFFFFFFFFFFFFFFF and ins.get("effective_address") is not None:
            # Windows reports -1 for a non-canonical address: the instruction tells the truth
            addr = ins["effective_address"]
            kind = "WRITE" if ins.get("memory_access") in ("write", "read_write") else "READ"
        elif t.endswith("_WRITE"):
            kind = "WRITE"
        elif t.endswith("_READ"):
            kind = "READ"
        else:
            kind = "WRITE" if ins.get("memory_access") in ("write", "read_write") else "READ"
        return f"NULL_POINTER_{kind}" if addr < NULL_LIMIT else f"INVALID_POINTER_{kind}"
    return "UNKNOWN"


def _code(report: CrashReport) -> str:
    exc = report.exception
    if exc is None:
        return "HANG" if report.deadlocks else "NONE"
    t = exc.type or ""
    if report.source_format == "minidump" and exc.code is not None and (report.extra or {}).get("os_short") == "windows":
        return f"{exc.code:08x}"
    return t.split(" ")[0].replace(".", "_") or "UNKNOWN"


def bucket_id(report: CrashReport, cls: str, blamed: int | None) -> str:
    """``<class>_<code>_<module>!<function>`` in the spirit of WinDbg's FAILURE_BUCKET_ID."""
    th = report.crashed_thread or (report.threads[0] if report.threads else None)
    where = "unknown"
    if th is not None and blamed is not None and 0 <= blamed < len(th.frames):
        f = th.frames[blamed]
        fn = normalize_function(f.function) if f.function else None
        if f.module and fn:
            where = f"{f.module}!{fn}"
        elif fn:
            where = fn
        elif f.module:
            where = f"{f.module}+{f.module_offset or 0:#x}"
        elif f.instruction is not None:
            where = f"{f.instruction:#x}"
    return f"{cls}_{_code(report)}_{where}"


# ------------------------------------------------------------------ hangs

def _wait_kind(function: str) -> str | None:
    for kind, pat in _wait_functions():
        if pat.endswith("*"):
            if function.startswith(pat[:-1]):
                return kind
        elif function == pat:
            return kind
    return None


def classify_waits(report: CrashReport, read_ptr: Callable[[int, int], int | None] | None = None,
                   depth: int = 6) -> CrashReport:
    """Mark threads whose top frames are wait functions (``WaitInfo``).  With ``read_ptr``
    (address, size -> int) a futex/mutex owner is read from glibc's mutex (``__owner`` at +8)."""
    out = []
    changed = False
    for t in report.threads:
        if t.wait is not None or not t.frames:
            out.append(t)
            continue
        wait = None
        hits = [(f, _wait_kind(f.function.split("(")[0])) for f in t.frames[:depth]
                if f.function and f.language == "native"]      # text traces bring their own WaitInfo
        hits = [(f, k) for f, k in hits if k is not None]
        # the most specific wait wins: NtWaitForSingleObject under RtlEnterCriticalSection is a
        # critical section wait, a futex under pthread_mutex_lock a mutex wait
        hits.sort(key=lambda h: _WAIT_PRIORITY.index(h[1]) if h[1] in _WAIT_PRIORITY else 99)
        for f, kind in hits[:1]:
            resource = f"{kind}@{t.id}"
            owner = None
            regs = t.frames[0].registers or t.registers
            arg = regs.get("rdi") if "rdi" in regs else None
            if kind in ("mutex", "futex") and arg:
                resource = f"futex:{arg:#x}"
                if read_ptr is not None:
                    own = read_ptr(arg + 8, 4)
                    owner = own or None
            elif kind == "critical_section" and report.cpu == "x86" and read_ptr is not None:
                cs = _critical_section_x86(t, read_ptr)
                if cs is not None:
                    resource = f"critical_section:{cs[0]:#x}"
                    owner = cs[1]
            wait = WaitInfo(kind, resource, owner, f.function)
        if wait is not None:
            changed = True
            t = dataclasses.replace(t, wait=wait)
        out.append(t)
    return dataclasses.replace(report, threads=tuple(out)) if changed else report


def _critical_section_x86(t: CrashThread, read_ptr: Callable[[int, int], int | None]) -> tuple[int, int | None] | None:
    """(CRITICAL_SECTION address, owning thread id) for an x86 thread blocked in
    ``RtlEnterCriticalSection``: the argument is the first word at its caller's stack pointer;
    ``OwningThread`` is at offset 12 of the structure."""
    for k, f in enumerate(t.frames[:-1]):
        if f.function and f.function.split("(")[0].lstrip("_").startswith(("RtlEnterCriticalSection",
                                                                             "EnterCriticalSection")):
            esp = t.frames[k + 1].registers.get("esp")
            if esp is None:
                return None
            cs = read_ptr(esp, 4)
            if not cs:
                return None
            return cs, (read_ptr(cs + 12, 4) or None)
    return None


#: Crash reports of native code: their signature is always the Socorro one.
NATIVE_FORMATS = frozenset({"minidump", "microdump", "elf_core"})


def analyze_crash(report: CrashReport, read_ptr: Callable[[int, int], int | None] | None = None) -> CrashReport:
    """Fill problem class, blamed frame, bucket id, signature and deadlocks of ``report``."""
    report = classify_waits(report, read_ptr)
    deadlocks = tuple(find_deadlocks(report.threads)) or report.deadlocks
    report = dataclasses.replace(report, deadlocks=deadlocks)
    # A reader that knows better (ABORT_ASSERT from an assert message, EXTERNAL_SIGNAL, JVM_*,
    # a hang snapshot) has already set these; keep them and fill only what is missing.
    cls = report.problem_class or problem_class(report)
    th = report.crashed_thread or (report.threads[0] if report.threads and report.exception is None else None)
    blamed = report.blamed_frame if report.blamed_frame is not None else blamed_frame(th)
    native = report.source_format in NATIVE_FORMATS
    signature = socorro_signature(report) if native or not report.signature else report.signature
    return dataclasses.replace(report, problem_class=cls, blamed_frame=blamed,
                               bucket_id=report.bucket_id or bucket_id(report, cls, blamed),
                               signature=signature)
