"""Optional minidump streams: thread names, unloaded modules, misc info, handles,
Breakpad info/assertion, Linux text streams and Crashpad annotations.

Each reader takes ``(reader, stream entry, minidump, cpu)`` and fills the
minidump; a FormatError raised here is turned into a warning by the parser.
"""

from __future__ import annotations

import struct
import uuid

from backline.analyzers.dumps.minidump import types as T
from backline.analyzers.dumps.minidump.reader import Reader
from backline.errors import FormatError

MAX_TEXT_STREAM = 16 << 20


def _thread_names(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    n = r.u32(s.rva)
    r.count(n, 12, s.rva + 4, s.size - 4, "thread names")
    names: dict[int, str] = {}
    for i in range(n):
        tid, rva = struct.unpack_from("<IQ", r.data, s.rva + 4 + i * 12)
        try:
            names[tid] = r.md_string(rva)
        except FormatError:
            md.warnings.append(f"thread {tid:#x}: name unreadable")
    md.threads[:] = [T.MdThread(t.thread_id, t.suspend_count, t.priority_class, t.priority, t.teb,
                                t.stack_start, t.stack_size, t.stack_rva, t.context,
                                names.get(t.thread_id, t.name)) for t in md.threads]


def _unloaded(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    hdr, entry, n = r.u32(s.rva), r.u32(s.rva + 4), r.u32(s.rva + 8)
    if hdr < 12 or entry < 24:
        raise FormatError(f"unloaded module list header {hdr}/{entry} is not valid",
                          artifact=r.name, locator=f"offset:{s.rva:#x}")
    r.count(n, entry, s.rva + hdr, s.size - hdr, "unloaded module list")
    for i in range(n):
        base, size, checksum, ts, name_rva = struct.unpack_from("<QIIII", r.data, s.rva + hdr + i * entry)
        md.unloaded_modules.append(T.MdUnloadedModule(base, size, checksum, ts, r.md_string(name_rva)))


def _misc_info(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    if s.size < 24:
        raise FormatError(f"misc info of {s.size} bytes (need 24)", artifact=r.name,
                          locator=f"offset:{s.rva:#x}")
    _size, flags, pid, create, user, kernel = struct.unpack_from("<6I", r.data, s.rva)
    has_pid, has_times = flags & 1, flags & 2
    md.misc_info = T.MdMiscInfo(flags, pid if has_pid else None, create if has_times else None,
                                user if has_times else None, kernel if has_times else None)


def _handles(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    hdr, desc, n = r.u32(s.rva), r.u32(s.rva + 4), r.u32(s.rva + 8)
    if hdr < 16 or desc < 32:
        raise FormatError(f"handle data header {hdr}/{desc} is not valid", artifact=r.name,
                          locator=f"offset:{s.rva:#x}")
    r.count(n, desc, s.rva + hdr, s.size - hdr, "handle data")
    for i in range(n):
        h, type_rva, obj_rva, attrs, access, hcount, pcount = struct.unpack_from(
            "<QIIIIII", r.data, s.rva + hdr + i * desc)
        type_name = _opt_string(r, type_rva)
        obj_name = _opt_string(r, obj_rva)
        md.handles.append(T.MdHandle(h, type_name, obj_name, attrs, access, hcount, pcount))


def _opt_string(r: Reader, rva: int) -> str | None:
    if not rva:
        return None
    try:
        return r.md_string(rva)
    except FormatError:
        return None


def _breakpad_info(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    if s.size < 12:
        raise FormatError("breakpad info stream too small", artifact=r.name, locator=f"offset:{s.rva:#x}")
    validity, dump_tid, req_tid = struct.unpack_from("<III", r.data, s.rva)
    md.breakpad_info = {"dump_thread_id": dump_tid if validity & 1 else None,
                        "requesting_thread_id": req_tid if validity & 2 else None}


def _utf16_field(raw: bytes) -> str:
    text = raw.decode("utf-16-le", errors="replace")
    return text.split("\0", 1)[0]


def _assertion(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    if s.size < 776:
        raise FormatError("assertion stream too small", artifact=r.name, locator=f"offset:{s.rva:#x}")
    raw = r.bytes(s.rva, 776)
    line, typ = struct.unpack_from("<II", raw, 768)
    md.assertion = T.MdAssertion(_utf16_field(raw[0:256]), _utf16_field(raw[256:512]),
                                 _utf16_field(raw[512:768]), line, typ)


def _text(key: str):
    def read(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
        raw = r.bytes(s.rva, min(s.size, MAX_TEXT_STREAM))
        if key in ("cmdline", "environ"):
            md.linux[key] = [p.decode("utf-8", errors="replace") for p in raw.split(b"\0") if p]
        else:
            md.linux[key] = raw.decode("utf-8", errors="replace")
    return read


def _auxv(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    width = 4 if cpu == "x86" else 8
    n = min(s.size // (2 * width), 4096)
    fmt = "<II" if width == 4 else "<QQ"
    md.linux["auxv"] = {k: v for k, v in (struct.unpack_from(fmt, r.data, s.rva + i * 2 * width)
                                          for i in range(n)) if k}


def _dict(r: Reader, rva: int) -> dict[str, str]:
    if not rva:
        return {}
    n = r.u32(rva)
    r.count(n, 8, rva + 4, r.size, "annotation dictionary")
    out = {}
    for i in range(min(n, 100_000)):
        k, v = struct.unpack_from("<II", r.data, rva + 4 + i * 8)
        out[r.utf8_string(k)] = r.utf8_string(v)
    return out


def _crashpad(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    if s.size < 52:
        raise FormatError("crashpad info stream too small", artifact=r.name, locator=f"offset:{s.rva:#x}")
    version = r.u32(s.rva)
    report_id = str(uuid.UUID(bytes_le=r.bytes(s.rva + 4, 16)))
    client_id = str(uuid.UUID(bytes_le=r.bytes(s.rva + 20, 16)))
    _sa_size, sa_rva, _ml_size, ml_rva = struct.unpack_from("<IIII", r.data, s.rva + 36)
    simple = _dict(r, sa_rva) if _sa_size else {}
    mods: list[T.MdCrashpadModuleInfo] = []
    if _ml_size and ml_rva:
        n = r.u32(ml_rva)
        r.count(n, 12, ml_rva + 4, r.size, "crashpad module list")
        for i in range(n):
            idx, loc_size, loc_rva = struct.unpack_from("<III", r.data, ml_rva + 4 + i * 12)
            if loc_size < 28:
                continue
            _v, la_s, la_r, sa_s, sa_r, ao_s, ao_r = struct.unpack_from("<7I", r.bytes(loc_rva, 28))
            lists: list[str] = []
            if la_s and la_r:
                cnt = r.u32(la_r)
                r.count(cnt, 4, la_r + 4, r.size, "crashpad list annotations")
                lists = [r.utf8_string(r.u32(la_r + 4 + j * 4)) for j in range(cnt)]
            objs: dict[str, str] = {}
            if ao_s and ao_r:
                cnt = r.u32(ao_r)
                r.count(cnt, 12, ao_r + 4, r.size, "crashpad annotation objects")
                for j in range(cnt):
                    name_rva, typ, _res, val_rva = struct.unpack_from("<IHHI", r.data, ao_r + 4 + j * 12)
                    name = r.utf8_string(name_rva)
                    val = r.bytes(val_rva + 4, r.u32(val_rva)) if val_rva else b""
                    objs[name] = val.decode("utf-8", errors="replace") if typ == 1 else val.hex()
            mods.append(T.MdCrashpadModuleInfo(idx, tuple(lists), _dict(r, sa_r) if sa_s else {}, objs))
    md.crashpad_info = T.MdCrashpadInfo(version, report_id, client_id, simple, tuple(mods))


def _memory_info(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    hdr, entry, n = r.u32(s.rva), r.u32(s.rva + 4), r.u64(s.rva + 8)
    if hdr < 16 or entry < 48:
        raise FormatError(f"memory info list header {hdr}/{entry} is not valid", artifact=r.name,
                          locator=f"offset:{s.rva:#x}")
    r.count(n, entry, s.rva + hdr, s.size - hdr, "memory info list")
    for i in range(n):
        base, abase, aprot, _a, size, state, prot, typ, _b = struct.unpack_from(
            "<QQIIQIIII", r.data, s.rva + hdr + i * entry)
        md.memory_info.append(T.MdMemoryInfo(base, abase, aprot, size, state, prot, typ))


def _thread_info(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    hdr, entry, n = r.u32(s.rva), r.u32(s.rva + 4), r.u32(s.rva + 8)
    if hdr < 12 or entry < 64:
        raise FormatError(f"thread info list header {hdr}/{entry} is not valid", artifact=r.name,
                          locator=f"offset:{s.rva:#x}")
    r.count(n, entry, s.rva + hdr, s.size - hdr, "thread info list")
    for i in range(n):
        md.thread_info.append(T.MdThreadInfo(*struct.unpack_from("<IIIIQQQQQQ", r.data, s.rva + hdr + i * entry)))


def _comment(wide: bool):
    def read(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
        raw = r.bytes(s.rva, min(s.size, MAX_TEXT_STREAM))
        text = raw.decode("utf-16-le" if wide else "latin-1", errors="replace")
        md.comments.append(text.split("\0", 1)[0])
    return read


def _thread_ex_list(r: Reader, s: T.StreamEntry, md: T.Minidump, cpu: str | None) -> None:
    """MINIDUMP_THREAD_EX (64 bytes: a thread plus its backing store); used when no thread list."""
    if md.threads:
        return
    from backline.analyzers.dumps.minidump.parser import _context
    n = r.u32(s.rva)
    r.count(n, 64, s.rva + 4, s.size - 4, "thread ex list")
    for i in range(n):
        (tid, suspend, pclass, prio, teb, st_start, st_size, st_rva, ctx_size,
         ctx_rva) = struct.unpack_from("<IIIIQQIIII", r.data, s.rva + 4 + i * 64)
        ctx = _context(r, ctx_size, ctx_rva, cpu, md, f"thread {tid:#x}")
        md.threads.append(T.MdThread(tid, suspend, pclass, prio, teb, st_start, st_size, st_rva, ctx))
        if st_size and st_rva + st_size <= r.size:
            md.memory_regions.append(T.MemoryRegion(st_start, r.data[st_rva:st_rva + st_size]))
            md.memory = T.Memory(md.memory_regions)


OPTIONAL_STREAMS = {
    T.THREAD_NAMES: _thread_names,
    T.UNLOADED_MODULE_LIST: _unloaded,
    T.MISC_INFO: _misc_info,
    T.HANDLE_DATA: _handles,
    T.BREAKPAD_INFO: _breakpad_info,
    T.ASSERTION_INFO: _assertion,
    T.LINUX_CPU_INFO: _text("cpu_info"),
    T.LINUX_PROC_STATUS: _text("proc_status"),
    T.LINUX_LSB_RELEASE: _text("lsb_release"),
    T.LINUX_CMD_LINE: _text("cmdline"),
    T.LINUX_ENVIRON: _text("environ"),
    T.LINUX_MAPS: _text("maps"),
    T.LINUX_AUXV: _auxv,
    T.CRASHPAD_INFO: _crashpad,
    T.MEMORY_INFO_LIST: _memory_info,
    T.THREAD_INFO_LIST: _thread_info,
    T.COMMENT_A: _comment(False),
    T.COMMENT_W: _comment(True),
    T.THREAD_EX_LIST: _thread_ex_list,
}
