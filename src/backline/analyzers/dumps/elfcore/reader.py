"""Reading a Linux ELF core file: program headers, notes, memory.

A core file is an ELF file of type ``ET_CORE``.  Its ``PT_NOTE`` segment holds
one ``NT_PRSTATUS`` per thread (signal and registers), ``NT_PRPSINFO``
(process name, arguments), ``NT_SIGINFO`` (the fault), ``NT_AUXV`` and
``NT_FILE`` (which file is mapped where).  ``PT_LOAD`` segments hold the
memory that was dumped; a segment whose ``p_filesz`` is smaller than its
``p_memsz`` was not dumped past ``p_filesz`` and reads as unavailable.

Everything is bounded: note counts and sizes are checked against the file,
and bad values raise :class:`~backline.errors.FormatError` with the offset.

>>> ElfCore.__name__
'ElfCore'
"""

from __future__ import annotations

import bisect
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

from backline.errors import FormatError, TruncatedError

ET_CORE = 4
PT_LOAD = 1
PT_NOTE = 4
NT_PRSTATUS = 1
NT_PRPSINFO = 3
NT_FPREGSET = 2
NT_AUXV = 6
NT_SIGINFO = 0x53494749
NT_FILE = 0x46494C45

EM_386 = 3
EM_MIPS = 8
EM_PPC64 = 21
EM_S390 = 22
EM_X86_64 = 62
EM_AARCH64 = 183
MACHINES = {EM_386: "x86", EM_X86_64: "amd64", EM_AARCH64: "arm64", EM_PPC64: "ppc64", EM_S390: "s390x",
            EM_MIPS: "mips"}
_MIPS_TAIL = tuple(f"r{i}" for i in range(32)) + ("lo", "hi", "epc", "badvaddr", "status", "cause")

MAX_NOTES = 100_000
MAX_SEGMENTS = 1_000_000

# Register names in the order of ``elf_gregset_t`` (pr_reg) per machine.
GREGS = {
    EM_X86_64: ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
                "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
                "gs_base", "ds", "es", "fs", "gs"),
    EM_386: ("ebx", "ecx", "edx", "esi", "edi", "ebp", "eax", "ds", "es", "fs", "gs", "orig_eax",
             "eip", "cs", "eflags", "esp", "ss"),
    EM_AARCH64: tuple(f"x{i}" for i in range(31)) + ("sp", "pc", "pstate"),
    # s390x: PSW mask and address, r0-r15 (the 4-byte access registers that follow are not read)
    EM_S390: ("pswm", "pswa") + tuple(f"r{i}" for i in range(16)),
    EM_PPC64: tuple(f"r{i}" for i in range(32)) + ("nip", "msr", "orig_gpr3", "ctr", "link", "xer", "ccr",
                                                   "softe", "trap", "dar", "dsisr", "result"),
}
# MIPS: o32 (32-bit) registers start at index 6 (EF_R0), n64 at 0 (asm/reg.h)
MIPS_GREGS = {False: tuple(f"pad{i}" for i in range(6)) + _MIPS_TAIL, True: _MIPS_TAIL}
# Offset of pr_reg inside elf_prstatus: 112 on 64-bit ABIs, 72 on 32-bit ones.
PR_REG_OFFSET = {EM_X86_64: 112, EM_AARCH64: 112, EM_386: 72, EM_S390: 112, EM_PPC64: 112}


def greg_names(core: "ElfCore") -> tuple[str, ...]:
    if core.machine == EM_MIPS:
        return MIPS_GREGS[core.is64]
    return GREGS.get(core.machine, ())


@dataclass(frozen=True, slots=True)
class Segment:
    vaddr: int
    memsz: int
    offset: int
    filesz: int
    flags: int

    @property
    def end(self) -> int:
        return self.vaddr + self.memsz


@dataclass(frozen=True, slots=True)
class ThreadStatus:
    """One ``NT_PRSTATUS`` note: a thread, its current signal and registers."""

    tid: int
    signal: int
    registers: dict[str, int]
    note_offset: int
    ppid: int = 0


@dataclass(frozen=True, slots=True)
class MappedFile:
    """One ``NT_FILE`` entry: ``[start, end)`` maps ``path`` from ``file_offset``."""

    start: int
    end: int
    file_offset: int
    path: str


@dataclass(frozen=True, slots=True)
class SigInfo:
    signo: int
    errno: int
    code: int
    addr: int | None = None
    sender_pid: int | None = None


@dataclass(slots=True)
class ElfCore:
    """A parsed core file.  Use :func:`open_core`; call :meth:`close` (or use ``with``)."""

    path: Path
    machine: int
    is64: bool
    segments: list[Segment]
    endian: str = "<"
    threads: list[ThreadStatus] = field(default_factory=list)
    files: list[MappedFile] = field(default_factory=list)
    auxv: dict[int, int] = field(default_factory=dict)
    siginfo: SigInfo | None = None
    process_name: str | None = None
    args: str | None = None
    pid: int | None = None
    warnings: list[str] = field(default_factory=list)
    _data: mmap.mmap | bytes = b""
    _starts: list[int] = field(default_factory=list)

    @property
    def cpu(self) -> str:
        return MACHINES.get(self.machine, f"machine-{self.machine}")

    @property
    def ptr_size(self) -> int:
        return 8 if self.is64 else 4

    @property
    def byteorder(self) -> str:
        return "little" if self.endian == "<" else "big"

    def close(self) -> None:
        if isinstance(self._data, mmap.mmap):
            self._data.close()

    def __enter__(self) -> "ElfCore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- memory -------------------------------------------------------------
    def _segment_at(self, addr: int) -> Segment | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        seg = self.segments[i]
        return seg if addr < seg.end else None

    def read(self, addr: int, size: int) -> bytes | None:
        """Bytes at ``addr`` from the dumped memory, or ``None`` if any part is missing."""
        if size <= 0:
            return b""
        out = bytearray()
        while size > 0:
            seg = self._segment_at(addr)
            if seg is None:
                return None
            rel = addr - seg.vaddr
            if rel >= seg.filesz:           # mapped but not dumped
                return None
            n = min(size, seg.filesz - rel)
            start = seg.offset + rel
            if start + n > len(self._data):
                return None
            out += self._data[start:start + n]
            addr += n
            size -= n
        return bytes(out)

    def read_ptr(self, addr: int) -> int | None:
        raw = self.read(addr, self.ptr_size)
        if raw is None:
            return None
        return int.from_bytes(raw, self.byteorder)

    def read_u32(self, addr: int) -> int | None:
        raw = self.read(addr, 4)
        return None if raw is None else int.from_bytes(raw, self.byteorder)

    def read_cstring(self, addr: int, limit: int = 4096) -> str | None:
        out = bytearray()
        while len(out) < limit:
            chunk = self.read(addr + len(out), 64)
            if chunk is None:
                chunk = self.read(addr + len(out), 1)
                if chunk is None:
                    break
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                return out.decode("utf-8", "replace")
            out += chunk
        return out.decode("utf-8", "replace") if out else None

    def is_readable(self, addr: int) -> bool:
        seg = self._segment_at(addr)
        return seg is not None and addr - seg.vaddr < seg.filesz

    def is_executable(self, addr: int) -> bool:
        seg = self._segment_at(addr)
        if seg is not None:
            return bool(seg.flags & 1)
        return any(f.start <= addr < f.end for f in self.files)


def open_core(path: Path) -> ElfCore:
    """Parse the ELF header, program headers and notes of the core at ``path``."""
    name = str(path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise FormatError(f"cannot open core file: {exc.strerror}", artifact=name) from exc
    with fh:
        size = path.stat().st_size
        if size < 52:
            raise TruncatedError(f"file of {size} bytes is too small for an ELF header",
                                 artifact=name, locator="offset:0x0")
        data: mmap.mmap | bytes = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        return _parse(path, data, size)
    except Exception:
        if isinstance(data, mmap.mmap):
            data.close()
        raise


def _parse(path: Path, data: mmap.mmap | bytes, size: int) -> ElfCore:
    name = str(path)
    if data[:4] != b"\x7fELF":
        raise FormatError("not an ELF file (bad magic)", artifact=name, locator="offset:0x0")
    cls, endian = data[4], data[5]
    if cls not in (1, 2):
        raise FormatError(f"bad ELF class {cls}", artifact=name, locator="offset:0x4")
    if endian not in (1, 2):
        raise FormatError(f"bad ELF data encoding {endian}", artifact=name, locator="offset:0x5")
    E = "<" if endian == 1 else ">"
    is64 = cls == 2
    if is64:
        if size < 64:
            raise TruncatedError("ELF header truncated", artifact=name, locator="offset:0x0")
        e_type, e_machine = struct.unpack_from(E + "HH", data, 16)
        e_phoff, = struct.unpack_from(E + "Q", data, 32)
        e_phentsize, e_phnum = struct.unpack_from(E + "HH", data, 54)
    else:
        e_type, e_machine = struct.unpack_from(E + "HH", data, 16)
        e_phoff, = struct.unpack_from(E + "I", data, 28)
        e_phentsize, e_phnum = struct.unpack_from(E + "HH", data, 42)
    if e_type != ET_CORE:
        raise FormatError(f"ELF type {e_type} is not a core file (ET_CORE=4)", artifact=name,
                          locator="offset:0x10")
    want = 56 if is64 else 32
    if e_phentsize != want:
        raise FormatError(f"program header size {e_phentsize} (expected {want})", artifact=name,
                          locator=f"offset:{(54 if is64 else 42):#x}")
    phnum = e_phnum
    if phnum == 0xFFFF:  # PN_XNUM: real count in section 0's sh_info
        raise FormatError("cores with more than 65534 segments (PN_XNUM) are not supported",
                          artifact=name, locator=f"offset:{(56 if is64 else 44):#x}")
    if e_phoff + phnum * e_phentsize > size:
        raise TruncatedError(f"{phnum} program headers at {e_phoff:#x} run past the end of the file",
                             artifact=name, locator=f"offset:{e_phoff:#x}")
    segments: list[Segment] = []
    notes: list[tuple[int, int]] = []
    warnings: list[str] = []
    for i in range(phnum):
        off = e_phoff + i * e_phentsize
        if is64:
            p_type, p_flags, p_offset, p_vaddr, _pa, p_filesz, p_memsz, _al = struct.unpack_from(
                E + "IIQQQQQQ", data, off)
        else:
            p_type, p_offset, p_vaddr, _pa, p_filesz, p_memsz, p_flags, _al = struct.unpack_from(
                E + "IIIIIIII", data, off)
        if p_type == PT_NOTE:
            if p_offset + p_filesz > size:
                raise TruncatedError(f"note segment {p_offset:#x}+{p_filesz:#x} runs past the end "
                                     f"of the file ({size:#x})", artifact=name,
                                     locator=f"offset:{off:#x}")
            notes.append((p_offset, p_filesz))
        elif p_type == PT_LOAD:
            filesz = min(p_filesz, p_memsz)
            if p_offset + filesz > size:
                warnings.append(f"segment at {p_vaddr:#x} is truncated in the file "
                                f"({max(0, size - p_offset):#x} of {filesz:#x} bytes present)")
                filesz = max(0, size - p_offset)
            segments.append(Segment(p_vaddr, p_memsz, p_offset, filesz, p_flags))
    segments.sort(key=lambda s: s.vaddr)
    core = ElfCore(path=path, machine=e_machine, is64=is64, segments=segments, warnings=warnings,
                   endian=E, _data=data, _starts=[s.vaddr for s in segments])
    if e_machine == EM_MIPS and not is64:
        e_flags, = struct.unpack_from(E + "I", data, 36)
        if e_flags & 0x20:                      # EF_MIPS_ABI2: n32, 64-bit registers in a 32-bit core
            core.machine = -EM_MIPS
            core.warnings.append("MIPS n32 cores are not supported: registers not decoded")
    if e_machine not in GREGS and e_machine != EM_MIPS:
        core.warnings.append(f"unsupported machine {e_machine}: registers not decoded")
    count = 0
    for off, length in notes:
        for n_type, n_name, desc_off, desc_len in _iter_notes(data, off, length, name, E):
            count += 1
            if count > MAX_NOTES:
                raise FormatError(f"more than {MAX_NOTES} notes", artifact=name,
                                  locator=f"offset:{desc_off:#x}")
            desc = bytes(data[desc_off:desc_off + desc_len])
            if n_name == b"CORE":
                _apply_note(core, n_type, desc, desc_off)
    if not core.threads:
        core.warnings.append("no NT_PRSTATUS note: no thread registers in this core")
    return core


def _iter_notes(data, off: int, length: int, name: str, E: str = "<"):
    end = off + length
    pos = off
    while pos + 12 <= end:
        namesz, descsz, n_type = struct.unpack_from(E + "III", data, pos)
        name_off = pos + 12
        desc_off = name_off + ((namesz + 3) & ~3)
        nxt = desc_off + ((descsz + 3) & ~3)
        if nxt > end or desc_off > end:
            raise TruncatedError(f"note of {descsz} bytes runs past its segment", artifact=name,
                                 locator=f"offset:{pos:#x}")
        n_name = bytes(data[name_off:name_off + namesz]).rstrip(b"\0")
        yield n_type, n_name, desc_off, descsz
        pos = nxt


def _apply_note(core: ElfCore, n_type: int, desc: bytes, off: int) -> None:
    p = core.ptr_size
    E = core.endian
    fmt = E + ("Q" if p == 8 else "I")
    if n_type == NT_PRSTATUS:
        regs: dict[str, int] = {}
        names = greg_names(core)
        base = PR_REG_OFFSET.get(core.machine, 112 if core.is64 else 72)
        if len(desc) < base + len(names) * p:
            core.warnings.append(f"NT_PRSTATUS at offset {off:#x} is too short ({len(desc)} bytes)")
            return
        for i, reg in enumerate(names):
            regs[reg] = struct.unpack_from(fmt, desc, base + i * p)[0]
        cursig, = struct.unpack_from(E + "h", desc, 12)
        pid_off = 32 if p == 8 else 24
        tid, ppid = struct.unpack_from(E + "ii", desc, pid_off)
        core.threads.append(ThreadStatus(tid=tid, signal=cursig, registers=regs, note_offset=off,
                                         ppid=ppid))
    elif n_type == NT_FPREGSET and core.machine == EM_S390 and core.threads and len(desc) >= 8 + 16 * 8:
        # s390x: fpc, pad, f0-f15; compilers park r11/r15 of leaf functions in f-registers
        regs = core.threads[-1].registers
        for i in range(16):
            regs[f"f{i}"] = struct.unpack_from(E + "Q", desc, 8 + 8 * i)[0]
    elif n_type == NT_PRPSINFO:
        if p == 8:
            fname_off, args_off, pid_off = 40, 56, 24
        elif len(desc) >= 128:      # 32-bit ABIs with 4-byte uid/gid (MIPS, ARM EABI): 128 bytes
            fname_off, args_off, pid_off = 32, 48, 16
        else:                       # i386: 2-byte uid/gid, 124 bytes
            fname_off, args_off, pid_off = 28, 44, 12
        if len(desc) >= args_off + 80:
            core.process_name = desc[fname_off:fname_off + 16].split(b"\0")[0].decode("utf-8", "replace")
            core.args = desc[args_off:args_off + 80].split(b"\0")[0].decode("utf-8", "replace").strip()
            core.pid, = struct.unpack_from(E + "i", desc, pid_off)
    elif n_type == NT_SIGINFO and len(desc) >= 12:
        signo, errno, code = struct.unpack_from(E + "iii", desc, 0)
        addr = sender = None
        union = 16 if p == 8 else 12
        if signo in (4, 5, 7, 8, 11) and 0 < code < 0x80 and len(desc) >= union + p:   # SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV
            addr = struct.unpack_from(fmt, desc, union)[0]
        elif code <= 0 and len(desc) >= union + 4:                    # sent by kill/tgkill
            sender = struct.unpack_from(E + "i", desc, union)[0]
        core.siginfo = SigInfo(signo, errno, code, addr, sender)
    elif n_type == NT_AUXV:
        for i in range(0, len(desc) - 2 * p + 1, 2 * p):
            key = struct.unpack_from(fmt, desc, i)[0]
            val = struct.unpack_from(fmt, desc, i + p)[0]
            if key == 0:
                break
            core.auxv[key] = val
    elif n_type == NT_FILE and len(desc) >= 2 * p:
        count = struct.unpack_from(fmt, desc, 0)[0]
        page = struct.unpack_from(fmt, desc, p)[0]
        table = 2 * p
        if count * 3 * p + table > len(desc):
            core.warnings.append(f"NT_FILE at offset {off:#x} claims {count} entries; ignored")
            return
        names = desc[table + count * 3 * p:].split(b"\0")
        for i in range(count):
            start, end, pgoff = struct.unpack_from(E + ("QQQ" if p == 8 else "III"), desc, table + i * 3 * p)
            fname = names[i].decode("utf-8", "replace") if i < len(names) else ""
            core.files.append(MappedFile(start, end, pgoff * page, fname))
