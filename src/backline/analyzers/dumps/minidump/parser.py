"""Backline's own minidump parser: header, stream directory and every standard stream.

Structural problems of the header or directory (bad magic, a directory that
does not fit in the file, absurd stream counts, a stream pointing outside the
file, record counts larger than their stream) raise
:class:`~backline.errors.FormatError`.  A damaged *optional* stream (thread
names, handles, vendor streams) is skipped with a warning in
``Minidump.warnings`` so the rest can still be analysed.

>>> from backline.testing import corpus_dir
>>> md = read_minidump(corpus_dir() / "dumps/breakpad/minidump2.dmp")
>>> md.system_info.os, md.system_info.cpu, len(md.threads), len(md.modules)
('Windows NT', 'x86', 2, 13)
"""

from __future__ import annotations

import mmap
import struct
import uuid
from pathlib import Path

from backline.analyzers.dumps.minidump import types as T
from backline.analyzers.dumps.minidump.context import CpuContext, parse_context
from backline.analyzers.dumps.minidump.reader import Reader
from backline.errors import FormatError

MAGIC = 0x504D444D          # "MDMP"
MAX_STREAMS = 4096
SMALL_FILE = 64 << 20
MAX_STREAM_BYTES = 1 << 28      # no directory or descriptor stream is larger than 256 MiB

_CPU_NAMES = {0: "x86", 1: "mips", 2: "alpha", 3: "ppc", 4: "shx", 5: "arm", 6: "ia64",
              9: "amd64", 10: "x86", 12: "arm64", 0x8001: "sparc", 0x8002: "ppc64",
              0x8003: "arm64", 0x8004: "mips64"}
_OS_NAMES = {0: "Windows 3.1", 1: "Windows 9x", 2: "Windows NT", 3: "Windows CE",
             0x8000: "Unix", 0x8101: "Mac OS X", 0x8102: "iOS", 0x8201: "Linux",
             0x8202: "Solaris", 0x8203: "Android", 0x8204: "PS3", 0x8205: "NaCl",
             0x8206: "Fuchsia"}

_THREAD = struct.Struct("<IIIIQQIIII")      # 48 bytes
_MODULE = struct.Struct("<QIIII13IIIIIQQ")  # 108 bytes
_EXCEPTION = struct.Struct("<IIIIQQII15QII")  # 168 bytes
_SYSINFO = struct.Struct("<HHHBBIIIIIHH")   # 32 bytes, then 24 bytes of CPU info


def read_minidump(path: Path | str, name: str | None = None) -> T.Minidump:
    """Parse the minidump at ``path``.  Raises FormatError for a corrupt file."""
    path = Path(path)
    name = name or path.name
    with open(path, "rb") as fh:
        size = path.stat().st_size
        if size < 32:
            raise FormatError(f"file of {size} bytes is too small for a minidump header",
                              artifact=name, locator="offset:0x0")
        if size < SMALL_FILE:
            return parse_minidump(fh.read(), name)
        # large (full-memory) dumps are mapped, not copied: memory regions are views of the map,
        # which stays open as long as the parsed dump references it
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    return parse_minidump(memoryview(mm), name)


def parse_minidump(data: bytes | memoryview, name: str = "<minidump>") -> T.Minidump:
    """Parse minidump bytes."""
    data = memoryview(data)
    r = Reader(data, name)
    if r.size < 32 or r.u32(0) != MAGIC:
        raise FormatError("not a minidump (no MDMP signature)", artifact=name, locator="offset:0x0")
    version = r.u32(4)
    if version & 0xFFFF != 0xA793:
        raise FormatError(f"unknown minidump version {version:#x}", artifact=name, locator="offset:0x4")
    nstreams, dir_rva = r.u32(8), r.u32(12)
    timestamp, flags = r.u32(20), r.u64(24)
    if nstreams > MAX_STREAMS:
        raise FormatError(f"stream count {nstreams} is absurd", artifact=name, locator="offset:0x8")
    if dir_rva + nstreams * 12 > r.size:
        raise FormatError(f"stream directory ({nstreams} entries at {dir_rva:#x}) exceeds file of {r.size} bytes",
                          artifact=name, locator="offset:0xc")
    md = T.Minidump(path=name, version=version, flags=flags, timestamp=timestamp)
    truncated = False
    for i in range(nstreams):
        st, sz, rva = struct.unpack_from("<III", data, dir_rva + i * 12)
        if st == 0:                     # unused entry
            continue
        if rva + sz > r.size:
            label = T.STREAM_NAMES.get(st, hex(st))
            if sz > MAX_STREAM_BYTES or (rva >= r.size and st not in T.STREAM_NAMES):
                raise FormatError(f"stream {i} ({label}) range {rva:#x}+{sz:#x} exceeds file of {r.size} bytes",
                                  artifact=name, locator=f"stream:{i}")
            # starts inside the file but is cut off: a truncated dump; read what is there
            truncated = True
            if rva >= r.size:
                md.warnings.append(f"stream {i} ({label}) starts at {rva:#x}, after the end of the file "
                                   f"({r.size} bytes): the dump is truncated, stream missing")
                continue
            md.warnings.append(f"stream {i} ({label}) is cut off at byte {r.size} "
                               f"({rva + sz - r.size} of {sz} bytes missing): the dump is truncated")
            sz = r.size - rva
        if sz and dir_rva < rva + sz and rva < dir_rva + nstreams * 12 and st in _REQUIRED:
            raise FormatError(f"stream {i} overlaps the stream directory", artifact=name,
                              locator=f"stream:{i}")
        md.streams.append(T.StreamEntry(st, sz, rva))
    by_type: dict[int, T.StreamEntry] = {}
    for s in md.streams:
        by_type.setdefault(s.type, s)
    # system info first: it decides the CPU of every context
    if T.SYSTEM_INFO in by_type:
        md.system_info = _system_info(r, by_type[T.SYSTEM_INFO])
    cpu = md.system_info.cpu if md.system_info else None
    cpu = cpu if cpu in ("x86", "amd64", "arm64") else None
    for st, fn in _REQUIRED.items():
        if st in by_type:
            try:
                fn(r, by_type[st], md, cpu)
            except FormatError as exc:
                if not truncated:
                    raise
                md.warnings.append(f"{T.STREAM_NAMES[st]} stream unreadable in the truncated dump: {exc.message}")
    md.memory = T.Memory(md.memory_regions)
    for st, fn in _OPTIONAL.items():
        if st in by_type:
            try:
                fn(r, by_type[st], md, cpu)
            except FormatError as exc:
                md.warnings.append(f"{T.STREAM_NAMES.get(st, hex(st))} stream unreadable: {exc.message}")
    if md.system_info is None:
        md.warnings.append("no system info stream: CPU and OS unknown")
    if not md.threads:
        md.warnings.append("no threads in the dump")
    return md


# ---------------------------------------------------------------- required streams

def _memory_list(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    n = r.u32(s.rva)
    r.count(n, 16, s.rva + 4, s.size - 4, "memory list")
    regions = md.memory_regions
    for i in range(n):
        base, size, rva = struct.unpack_from("<QII", r.data, s.rva + 4 + i * 16)
        if rva + size > r.size:
            md.warnings.append(f"memory range {i} at {base:#x} ({size} bytes at file offset {rva:#x}) "
                               f"is outside the file: memory missing")
            continue
        regions.append(T.MemoryRegion(base, r.data[rva:rva + size]))


def _memory64_list(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    n, base_rva = r.u64(s.rva), r.u64(s.rva + 8)
    r.count(n, 16, s.rva + 16, s.size - 16, "memory64 list")
    regions = md.memory_regions
    rva = base_rva
    for i in range(n):
        start, size = struct.unpack_from("<QQ", r.data, s.rva + 16 + i * 16)
        if rva + size > r.size:
            md.warnings.append(f"memory64 range {i} at {start:#x} is cut off by the end of the file")
            break
        regions.append(T.MemoryRegion(start, r.data[rva:rva + size]))
        rva += size


def _system_info(r: Reader, s: T.StreamEntry) -> T.MdSystemInfo:
    if s.size < 56:
        raise FormatError(f"system info stream of {s.size} bytes (need 56)", artifact=r.name,
                          locator=f"offset:{s.rva:#x}")
    (arch, level, rev, ncpu, ptype, major, minor, build, platform, csd_rva, _suite,
     _res) = r.unpack(_SYSINFO, s.rva)
    vendor = None
    if arch in (0, 9, 10):
        raw = r.bytes(s.rva + 32, 12)
        if any(raw):
            vendor = raw.decode("ascii", errors="replace")
    csd = ""
    if csd_rva:
        try:
            csd = r.md_string(csd_rva)
        except FormatError:
            csd = ""
    return T.MdSystemInfo(
        cpu=_CPU_NAMES.get(arch, "unknown"), processor_architecture=arch, processor_level=level,
        processor_revision=rev, cpu_count=ncpu, product_type=ptype, major=major, minor=minor,
        build=build, platform_id=platform, csd_version=csd, vendor_id=vendor,
        os=_OS_NAMES.get(platform, f"unknown {platform:#x}"))


def _context(r: Reader, size: int, rva: int, cpu: str | None, md: T.Minidump,
             what: str) -> CpuContext | None:
    if size == 0 or rva == 0:
        return None
    try:
        return parse_context(r, rva, size, cpu)
    except FormatError as exc:
        md.warnings.append(f"{what}: context unreadable: {exc}")
        return None


def _thread_list(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    n = r.u32(s.rva)
    # some writers pad the count to 8 bytes
    off = s.rva + 4
    if s.size == 8 + n * 48:
        off = s.rva + 8
    r.count(n, 48, off, s.size - (off - s.rva), "thread list")
    for i in range(n):
        (tid, suspend, pclass, prio, teb, stack_start, stack_size, stack_rva, ctx_size,
         ctx_rva) = r.unpack(_THREAD, off + i * 48)
        ctx = _context(r, ctx_size, ctx_rva, cpu, md, f"thread {tid:#x}")
        md.threads.append(T.MdThread(tid, suspend, pclass, prio, teb, stack_start, stack_size,
                                     stack_rva, ctx))
        if stack_size and stack_rva == 0:
            pass            # full-memory dumps: the stack is in the Memory64List, the descriptor has no RVA
        elif stack_size and stack_rva + stack_size <= r.size:
            md.memory_regions.append(
                T.MemoryRegion(stack_start, r.data[stack_rva:stack_rva + stack_size]))
        elif stack_size:
            md.warnings.append(f"thread {tid:#x}: stack memory ({stack_size} bytes at {stack_rva:#x}) is outside the file")


def _fmt_guid(raw: bytes) -> str:
    return str(uuid.UUID(bytes_le=raw)).replace("-", "").upper()


def _cv_record(r: Reader, size: int, rva: int, code_file: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(debug_file, debug_id, code_id_from_build_id, cv signature) from a CodeView record."""
    if size < 4 or rva == 0:
        return None, None, None, None
    r.check(rva, size)
    sig = r.u32(rva)
    if sig == 0x53445352 and size >= 24:            # RSDS (PDB 7)
        guid = r.bytes(rva + 4, 16)
        age = r.u32(rva + 20)
        pdb = r.cstring(rva + 24, size - 24)
        return pdb, f"{_fmt_guid(guid)}{age:x}", None, "RSDS"
    if sig == 0x3031424E and size >= 16:            # NB10 (PDB 2)
        ts, age = r.u32(rva + 8), r.u32(rva + 12)
        pdb = r.cstring(rva + 16, size - 16)
        return pdb, f"{ts:08X}{age:x}", None, "NB10"
    if sig == 0x4270454C:                           # BpEL (ELF build id)
        build_id = r.bytes(rva + 4, size - 4)
        padded = (build_id + bytes(16))[:16]
        return code_file, f"{_fmt_guid(padded)}0", build_id.hex(), "BpEL"
    return None, None, None, None


def _version(r: Reader, off: int) -> str | None:
    sig, _sv, ms, ls = struct.unpack_from("<IIII", r.data, off)
    if sig != 0xFEEF04BD:
        return None
    return f"{ms >> 16}.{ms & 0xFFFF}.{ls >> 16}.{ls & 0xFFFF}"


def _module_list(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    apple = md.system_info is not None and md.system_info.os in ("Mac OS X", "iOS")
    n = r.u32(s.rva)
    off = s.rva + 4
    if s.size == 8 + n * 108:
        off = s.rva + 8
    r.count(n, 108, off, s.size - (off - s.rva), "module list")
    for i in range(n):
        vals = r.unpack(_MODULE, off + i * 108)
        base, size, checksum, ts, name_rva = vals[:5]
        cv_size, cv_rva = vals[18], vals[19]
        code_file = r.md_string(name_rva)
        version = _version(r, off + i * 108 + 24)
        try:
            debug_file, debug_id, build_id, cvsig = _cv_record(r, cv_size, cv_rva, code_file)
        except FormatError as exc:
            md.warnings.append(f"module {code_file}: CodeView record unreadable: {exc.message}")
            debug_file = debug_id = build_id = cvsig = None
        code_id = build_id or f"{ts:08x}{size:x}"
        if apple and cvsig == "RSDS" and debug_id:
            code_id = debug_id[:32].lower()          # Mach-O LC_UUID
        md.modules.append(T.MdModule(base, size, checksum, ts, code_file, version, debug_file,
                                     debug_id, code_id, cvsig))


def _exception(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    if s.size < 168:
        raise FormatError(f"exception stream of {s.size} bytes (need 168)", artifact=r.name,
                          locator=f"offset:{s.rva:#x}")
    v = r.unpack(_EXCEPTION, s.rva)
    tid, _align, code, flags, record, address, nparams, _u = v[:8]
    params = v[8:8 + min(nparams, 15)]
    ctx_size, ctx_rva = v[23], v[24]
    ctx = _context(r, ctx_size, ctx_rva, cpu, md, "exception")
    md.exception = T.MdException(tid, code, flags, record, address, tuple(params), ctx)


_REQUIRED = {
    T.MEMORY_LIST: _memory_list,
    T.MEMORY64_LIST: _memory64_list,
    T.THREAD_LIST: _thread_list,
    T.MODULE_LIST: _module_list,
    T.EXCEPTION: _exception,
}

# optional streams live in a sibling module to keep this one short
from backline.analyzers.dumps.minidump.streams import OPTIONAL_STREAMS as _OPTIONAL  # noqa: E402
