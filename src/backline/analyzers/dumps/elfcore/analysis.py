"""Turning a parsed core into a :class:`CrashReport`: threads, crash reason, waits.

:func:`load_core` is the entry point.  Besides the stacks it decides the
problem class (NULL_POINTER_READ/WRITE, STACK_OVERFLOW, ABORT, ...), the
blamed frame (first frame outside :data:`SYSTEM_MODULES`), a bucket id and a
simple signature, and, for threads blocked in ``futex`` system calls, what
they wait for: a glibc mutex (owner TID at ``__data.__owner``) or a thread
being joined (the futex word is that thread's TID).  Cycles of that wait-for
graph are reported as deadlocks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from backline.analyzers.dumps.elfcore.modules import LoadedModule, resolve_modules
from backline.analyzers.dumps.elfcore.reader import EM_386, EM_AARCH64, EM_X86_64, ElfCore, open_core
from backline.analyzers.dumps.elfcore.signals import si_code_name, signal_name
from backline.analyzers.dumps.elfcore.unwind import SIGNAL_FRAME, Walker
from backline.analyzers.dumps.hang import find_deadlocks
from backline.analyzers.dumps.model import (CrashException, CrashModule, CrashReport, CrashThread,
                                            StackFrame, WaitInfo)

#: Modules that are never blamed (system and language runtimes); regexes on the file name.
SYSTEM_MODULES: tuple[str, ...] = (
    r"^libc[.-]", r"^libc\.so", r"^libpthread", r"^ld-linux", r"^ld-\d", r"^ld64\.so",
    r"^libstdc\+\+", r"^libgcc_s", r"^libm[.-]", r"^libdl[.-]", r"^librt[.-]",
    r"^linux-vdso", r"^linux-gate", r"^\[vdso\]", r"^libjvm\.so", r"^libpython",
    r"^libasan", r"^libubsan", r"^libtsan",
)
#: Functions whose frames are skipped when naming the signature (abort machinery).
SIGNATURE_SKIP = re.compile(r"^(__GI_)?(raise|abort|__pthread_kill\w*|pthread_kill|gsignal|"
                            r"__assert_fail\w*|__libc_message|__fortify_fail|__stack_chk_fail|"
                            r"__chk_fail|__libc_fatal|malloc_printerr)$")
SYSCALL_FUTEX = {EM_X86_64: ("orig_rax", 202, "rdi", "rdx"), EM_386: ("orig_eax", 240, "ebx", "edx")}
MUTEX_OWNER_OFFSET = 8     # glibc struct __pthread_mutex_s: __lock, __count, __owner
NULL_LIMIT = 0x10000
#: Signals that mark a snapshot (gcore of a stopped process), not a crash.
SNAPSHOT_SIGNALS = frozenset({19})      # SIGSTOP


def _is_system(module: str | None) -> bool:
    return bool(module) and any(re.search(p, module) for p in SYSTEM_MODULES)


def _is_abort_machinery(function: str | None) -> bool:
    """raise/abort/assert frames (also inside static executables); ``.constprop.0`` etc. ignored."""
    if not function:
        return False
    base = re.sub(r"\.(?:constprop|isra|part|cold)(?:\.\d+)*$", "", clean_function(function) or "")
    return bool(SIGNATURE_SKIP.match(base))


def clean_function(name: str | None) -> str | None:
    """glibc internal aliases as users know them: ``__GI_raise`` -> ``raise``."""
    if name and name.startswith("__GI_"):
        return name[5:]
    return name


def load_core(path: Path, binary_paths: Sequence[Path] = (),
              symbol_paths: Sequence[Path] = ()) -> CrashReport:
    """Read the ELF core at ``path`` into a :class:`CrashReport`.

    ``binary_paths`` are folders holding the executable and libraries (matched
    by name or GNU build id); ``symbol_paths`` folders of separate debug files
    (``.build-id/xx/….debug``).  Raises :class:`~backline.errors.FormatError`
    when the file is not a readable core; missing pieces become ``warnings``.
    """
    with open_core(Path(path)) as core:
        warnings: list[str] = list(core.warnings)
        modules = resolve_modules(core, [Path(p) for p in binary_paths],
                                  [Path(p) for p in symbol_paths], warnings)
        try:
            return report_from_core(core, modules, warnings)
        finally:
            for m in modules:
                if m.image is not None:
                    m.image.close()


def report_from_core(core: ElfCore, modules: list[LoadedModule], warnings: list[str]) -> CrashReport:
    """Walk, classify and blame an open core whose modules are resolved (``backline dbg`` keeps
    both open for its session; :func:`load_core` closes them)."""
    walker = Walker(core, modules)
    if walker.arch is None:
        warnings.append(f"no stack walker for {core.cpu}: threads have registers only")
    crashing = None
    for i, t in enumerate(core.threads):
        if t.signal and t.signal not in SNAPSHOT_SIGNALS:
            crashing = i
            break
    si = core.siginfo
    if (crashing is None and si is not None and si.signo and si.signo not in SNAPSHOT_SIGNALS
            and core.threads):
        crashing = 0
    threads: list[CrashThread] = []
    budget = 400_000
    for i, t in enumerate(core.threads):
        frames = walker.walk(t.registers, max_frames=max(16, min(100_000, budget)),
                             on_warning=lambda m, tid=t.tid: warnings.append(f"thread {tid}: {m}"))
        budget -= len(frames)
        threads.append(CrashThread(id=t.tid, frames=tuple(frames), crashed=(i == crashing),
                                   registers=dict(t.registers)))
    threads = _with_waits(core, threads)
    exception = None
    problem = None
    insn = None
    shared_insn = None
    if crashing is not None:
        t = core.threads[crashing]
        si = core.siginfo
        signo = si.signo if si and si.signo else t.signal
        code = si.code if si and si.signo == signo else None
        sub = si_code_name(signo, code) if code is not None else None
        addr = si.addr if si and si.signo == signo else None
        if addr is None and signo in (7, 11) and walker.arch and walker.arch.pc in t.registers:
            addr = _effective_address(walker, t.registers, t.registers[walker.arch.pc])
            if addr is not None:
                warnings.append("no NT_SIGINFO: fault address computed from the faulting instruction")
        msg = signal_name(signo) + (f" / {sub}" if sub else "")
        if si is not None and si.sender_pid is not None and code is not None and code <= 0:
            msg += f" sent by pid {si.sender_pid}"
        exception = CrashException(type=signal_name(signo), message=msg, code=signo, subcode=sub,
                                   address=addr, thread=t.tid)
        problem = _problem_class(core, walker, threads[crashing], signo, code, addr)
        pid = core.pid or (core.threads[0].tid if core.threads else None)
        if si is not None and si.sender_pid is not None and code is not None and code <= 0 \
                and si.sender_pid not in (pid, 0) and si.sender_pid not in {th.tid for th in core.threads}:
            problem = "EXTERNAL_SIGNAL"     # kill -ABRT/-QUIT/-SEGV from outside: often a hang snapshot
        insn = crash_instruction(walker, dict(t.registers))
        shared_insn = _shared_disassembly(walker, core, dict(t.registers))
    mods = tuple(CrashModule(name=m.name, base=m.base, size=m.end - m.base, path=m.path,
                             debug_id=m.build_id, code_id=m.build_id,
                             debug_file=str(m.image.debug.path) if m.image and m.image.debug else None,
                             symbols_loaded=bool(m.image and m.image.has_symbols))
                 for m in modules)
    report = CrashReport(
        source_format="elf_core", threads=tuple(threads), exception=exception,
        crashing_thread=crashing, modules=mods, os="Linux", cpu=core.cpu,
        pid=core.pid if core.pid else (core.threads[0].tid if core.threads else None),
        process_name=core.process_name, problem_class=problem,
        deadlocks=tuple(find_deadlocks(threads)), warnings=tuple(dict.fromkeys(warnings)),
        extra={"args": core.args, "auxv_entry": core.auxv.get(9),
               "memory_regions": len(core.segments),
               "dumped_bytes": sum(seg.filesz for seg in core.segments),
               "hang_dump": crashing is None, "crash_instruction": insn,
               # the minidump side's format (analysis.disassemble), read by analyze_crash and json_out
               "crashing_instruction": shared_insn},
    )
    return _with_blame(report)


def _with_blame(report: CrashReport) -> CrashReport:
    t = report.crashed_thread
    if t is None or not t.frames:
        return report
    # a crash inside a signal handler: the interrupted code (after the trampoline) is to blame
    after = next((i + 1 for i, f in enumerate(t.frames) if f.function == SIGNAL_FRAME), 0)

    def blameable(i: int, f) -> bool:
        return bool(f.module) and not _is_system(f.module) and not _is_abort_machinery(f.function)

    blamed = next((i for i, f in enumerate(t.frames) if i >= after and blameable(i, f)),
                  next((i for i, f in enumerate(t.frames) if blameable(i, f)), 0))
    f = t.frames[blamed]
    parts: list[str] = []
    for fr in t.frames[:blamed + 1]:
        name = clean_function(fr.function) or (f"{fr.module}+{fr.module_offset:#x}" if fr.module
                                                else f"{fr.instruction or 0:#x}")
        if fr is not f and (_is_abort_machinery(name) or name == SIGNAL_FRAME):
            continue
        if fr is not f and _is_system(fr.module):
            continue
        parts.append(name)
    signature = " | ".join(parts[:5]) if parts else None
    where = f"{f.module or '?'}!{clean_function(f.function) or (hex(f.module_offset) if f.module_offset is not None else '?')}"
    sig = report.exception.type if report.exception else "UNKNOWN"
    bucket = f"{report.problem_class or 'CRASH'}_{sig}_{where}"
    from dataclasses import replace
    return replace(report, blamed_frame=blamed, signature=signature, bucket_id=bucket)


def _problem_class(core: ElfCore, walker: Walker, thread: CrashThread, signo: int,
                   code: int | None, addr: int | None) -> str:
    names = {clean_function(f.function) for f in thread.frames[:12]}
    if signo == 6:
        return "ABORT_ASSERT" if names & {"__assert_fail", "__assert_fail_base"} else "ABORT"
    if signo == 8:
        return "DIVIDE_BY_ZERO" if code in (1, 3) else "ARITHMETIC"
    if signo == 4:
        return "ILLEGAL_INSTRUCTION"
    if signo == 7:
        return "BUS_ERROR"
    if signo != 11:
        return signal_name(signo)
    pc = thread.registers.get(walker.arch.pc) if walker.arch else None
    sp = thread.registers.get(walker.arch.sp) if walker.arch else None
    if addr is not None and pc is not None and addr == pc:
        return "EXECUTE_NULL" if addr < NULL_LIMIT else "EXECUTE_NON_CODE"
    if addr is not None and sp is not None and abs(addr - sp) < 0x10000 and not core.is_readable(addr):
        return "STACK_OVERFLOW"
    if addr is None and pc is not None:
        addr = _effective_address(walker, thread.registers, pc)
    access = _access_kind(walker, pc) if pc is not None else None
    if addr is not None and addr < NULL_LIMIT:
        return f"NULL_POINTER_{access or 'ACCESS'}"
    return f"INVALID_POINTER_{access or 'ACCESS'}"


def crash_instruction(walker: Walker, registers: dict[str, int]) -> dict | None:
    """The faulting instruction, disassembled with capstone, with the registers it uses.

    ``{"address": pc, "text": "mov dword ptr [rax + 4], edx", "registers": {"rax": 0, ...}}``
    """
    arch = walker.arch
    if arch is None or arch.pc not in registers:
        return None
    try:
        import capstone
    except ImportError:  # pragma: no cover - capstone is a dependency
        return None
    pc = registers[arch.pc]
    modes = {EM_X86_64: (capstone.CS_ARCH_X86, capstone.CS_MODE_64),
             EM_386: (capstone.CS_ARCH_X86, capstone.CS_MODE_32),
             EM_AARCH64: (capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)}
    mode = modes.get(walker.core.machine)
    code = walker.read_code(pc, 16) if mode else None
    if code is None:
        return None
    md = capstone.Cs(*mode)
    md.detail = True
    for insn in md.disasm(code, pc, 1):
        used: dict[str, int] = {}
        try:
            read, written = insn.regs_access()
            for r in list(read) + list(written):
                name = insn.reg_name(r)
                if name in registers:
                    used[name] = registers[name]
                elif name and name[0] == "e" and "r" + name[1:] in registers:      # eax -> rax
                    used[name] = registers["r" + name[1:]] & 0xFFFFFFFF
                elif name and name[0] == "w" and "x" + name[1:] in registers:      # w1 -> x1
                    used[name] = registers["x" + name[1:]] & 0xFFFFFFFF
        except capstone.CsError:
            pass
        return {"address": pc, "text": f"{insn.mnemonic} {insn.op_str}".strip(), "registers": used}
    return None


def _shared_disassembly(walker: Walker, core: ElfCore, registers: dict[str, int]) -> dict | None:
    """The faulting instruction as :func:`backline.analyzers.dumps.analysis.disassemble` gives it
    for minidumps (same keys), so the shared crash analysis reads ELF cores the same way."""
    arch = walker.arch
    if arch is None or arch.pc not in registers:
        return None
    pc = registers[arch.pc]
    code = walker.read_code(pc, 16) or walker.read_code(pc, 4)
    if code is None:
        return None
    try:
        from backline.analyzers.dumps.analysis import disassemble
    except ImportError:         # pragma: no cover - shared module absent
        return None
    return disassemble(code, pc, core.cpu, registers)


def _effective_address(walker: Walker, registers, pc: int) -> int | None:
    """The memory operand's address (base + index * scale + displacement) of the instruction at
    ``pc``: the fault address when the core has no ``NT_SIGINFO`` (e.g. qemu-user cores)."""
    try:
        import capstone
    except ImportError:  # pragma: no cover
        return None
    machine = walker.core.machine
    if machine == EM_X86_64:
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    elif machine == EM_386:
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_32)
    elif machine == EM_AARCH64:
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
    else:
        return None
    md.detail = True
    code = walker.read_code(pc, 16)
    if code is None:
        return None

    def reg(r: int) -> int | None:
        if not r:
            return 0
        name = insn.reg_name(r)
        if name in registers:
            return registers[name]
        if name and name[0] in "ew" and ("r" + name[1:]) in registers:       # eax -> rax
            return registers["r" + name[1:]] & 0xFFFFFFFF
        if name and name[0] == "w" and ("x" + name[1:]) in registers:         # w1 -> x1
            return registers["x" + name[1:]] & 0xFFFFFFFF
        return None

    for insn in md.disasm(code, pc, 1):
        for op in insn.operands:
            if op.type == (capstone.x86.X86_OP_MEM if machine != EM_AARCH64 else capstone.arm64.ARM64_OP_MEM):
                base, index = reg(op.mem.base), reg(op.mem.index)
                if base is None or index is None:
                    return None
                scale = getattr(op.mem, "scale", 1) or 1
                return (base + index * scale + op.mem.disp) & ((1 << 64) - 1)
    return None


def _access_kind(walker: Walker, pc: int) -> str | None:
    """READ or WRITE from the faulting instruction's memory operand (capstone)."""
    try:
        import capstone
    except ImportError:  # pragma: no cover - capstone is a dependency
        return None
    code = walker.read_code(pc, 16)
    if code is None or walker.core.machine not in (EM_X86_64, EM_386, EM_AARCH64):
        return None
    if walker.core.machine == EM_AARCH64:
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        md.detail = True
        for insn in md.disasm(code, pc, 1):
            m = insn.mnemonic
            return "WRITE" if m.startswith("st") else "READ" if m.startswith("ld") else None
        return None
    mode = capstone.CS_MODE_64 if walker.core.machine == EM_X86_64 else capstone.CS_MODE_32
    md = capstone.Cs(capstone.CS_ARCH_X86, mode)
    md.detail = True
    for insn in md.disasm(code, pc, 1):
        from capstone import x86
        for op in insn.operands:
            if op.type == x86.X86_OP_MEM:
                if op.access & capstone.CS_AC_WRITE:
                    return "WRITE"
                if op.access & capstone.CS_AC_READ:
                    return "READ"
        return None
    return None


def _with_waits(core: ElfCore, threads: list[CrashThread]) -> list[CrashThread]:
    spec = SYSCALL_FUTEX.get(core.machine)
    if spec is None:
        return threads
    nr_reg, nr, addr_reg, val_reg = spec
    tids = {t.id for t in threads}
    waits: dict[int, WaitInfo] = {}
    holds: dict[int, list[str]] = {}
    for t in threads:
        if t.registers.get(nr_reg) != nr:
            continue
        uaddr = t.registers.get(addr_reg, 0)
        expected = t.registers.get(val_reg)
        word = core.read_u32(uaddr)
        names = " ".join(clean_function(f.function) or "" for f in t.frames[:8])
        func = next((clean_function(f.function) for f in t.frames if f.function and
                     not f.function.startswith(("futex", "__futex", "__GI___futex", "__lll", "lll_"))),
                    None)
        if word is not None and word in tids and word != t.id and (expected == word or "join" in names):
            waits[t.id] = WaitInfo("join", f"thread:{word}", owner=word, function=func)
            continue
        owner = core.read_u32(uaddr + MUTEX_OWNER_OFFSET)
        if owner is not None and owner in tids and owner != t.id and "cond" not in names:
            res = f"mutex:{uaddr:#x}"
            waits[t.id] = WaitInfo("mutex", res, owner=owner, function=func)
            holds.setdefault(owner, []).append(res)
        else:
            waits[t.id] = WaitInfo("futex", f"futex:{uaddr:#x}", owner=None, function=func)
    # a thread inside flock/lockf/fcntl waits for a file lock another process (or thread) holds
    from backline.analyzers.dumps.analysis import _wait_kind
    for t in threads:
        if t.id in waits:
            continue
        for f in t.frames[:6]:
            name = clean_function(f.function) if f.function else None
            if name and _wait_kind(name) == "file_lock":
                waits[t.id] = WaitInfo("file_lock", f"file_lock@{t.id}", owner=None, function=name)
                break
    from dataclasses import replace
    return [replace(t, wait=waits.get(t.id), holds=tuple(holds.get(t.id, ())),
                    state="waiting" if t.id in waits else t.state)
            for t in threads]
