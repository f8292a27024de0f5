"""Binary signatures: what the first bytes of a file say it is.

Each probe looks only at the head of a file (plus its total size, to check
that header offsets stay inside the file) and answers a :class:`Sniff`, or
``None`` when the bytes are not its format.

>>> sniff_binary(b"\\xd4\\xc3\\xb2\\xa1" + bytes(20), 24).format
'pcap'
>>> sniff_binary(b"GMBU\\x03\\x02" + bytes(30), 36).format
'netmon2'
>>> sniff_compression(b"\\x28\\xb5\\x2f\\xfd....")
'zstd'
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from backline.model.core import ArtifactKind

_K = ArtifactKind


@dataclass(frozen=True, slots=True)
class Sniff:
    """What a binary signature says: kind, format detail, problems, extras."""

    kind: ArtifactKind
    format: str
    problems: tuple[str, ...] = ()
    meta: tuple[tuple[str, object], ...] = ()


#: Single-stream compressors, by magic.
_COMPRESSION = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def sniff_compression(head: bytes) -> str:
    """``gzip``/``bzip2``/``xz``/``zstd`` when ``head`` starts a compressed stream, else ``""``."""
    for magic, name in _COMPRESSION:
        if head.startswith(magic):
            if name == "bzip2" and not (len(head) > 3 and head[3:4].isdigit() and head[3:4] != b"0"):
                continue
            if name == "gzip" and len(head) > 2 and head[2] != 8:
                continue
            return name
    return ""


def is_tar(head: bytes) -> bool:
    """True when ``head`` starts with a tar header (ustar magic or a valid v7 checksum)."""
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    block = head[:512]
    if not block[:100].strip(b"\x00"):
        # an empty tar is only its two zero end blocks (padded to the record size)
        return 1024 <= len(head) <= 20480 and len(head) % 512 == 0 and not head.strip(b"\x00")

    field = block[148:156].replace(b"\x00", b" ").strip()
    if not field or any(c not in b"01234567" for c in field):
        return False
    expect = int(field, 8)
    total = sum(block[:148]) + 8 * 32 + sum(block[156:])
    return expect == total


def sniff_archive(head: bytes) -> str:
    """Archive container format (``zip``/``tar``/``7z``/``rar``/``cab``) or ``""``."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if is_tar(head):
        return "tar"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if head.startswith(b"MSCF\x00\x00\x00\x00"):
        return "cab"
    return ""


def _minidump(head: bytes, size: int) -> Sniff:
    problems: list[str] = []
    if len(head) < 32:
        return Sniff(_K.MINIDUMP, "minidump", ("truncated: minidump header needs 32 bytes",))
    version, count, rva = struct.unpack_from("<III", head, 4)
    if version & 0xFFFF != 0xA793:
        problems.append(f"minidump header: unexpected version 0x{version & 0xFFFF:04x} (want 0xa793)")
    if rva < 32:
        problems.append(f"minidump header: stream directory at rva 0x{rva:x} overlaps the header")
    elif rva + 12 * count > size:
        problems.append(f"minidump header: stream directory ({count} streams at rva 0x{rva:x}) "
                        f"runs past the end of the file ({size} bytes)")
    else:
        for i in range(count):
            off = rva + 12 * i
            if off + 12 > len(head):
                break
            stype, ssize, srva = struct.unpack_from("<III", head, off)
            if stype and srva + ssize > size:
                problems.append(f"minidump stream {i} (type {stype}) at rva 0x{srva:x} size {ssize} "
                                f"runs past the end of the file")
                break
            cut = _minidump_memory_cut(head, size, stype, srva, ssize)
            if cut:
                problems.append(cut)
                break
    return Sniff(_K.MINIDUMP, "minidump", tuple(problems), (("streams", count),))


def _minidump_memory_cut(head: bytes, size: int, stype: int, rva: int, ssize: int) -> str:
    """A memory list whose captured bytes lie past the end of the file (a cut dump)."""
    if stype == 5 and rva + 4 <= len(head):                    # MemoryListStream
        (n,) = struct.unpack_from("<I", head, rva)
        for i in range(min(n, (len(head) - rva - 4) // 16)):
            _start, dsize, drva = struct.unpack_from("<QII", head, rva + 4 + 16 * i)
            if drva + dsize > size:
                return f"truncated: memory range {i} (rva 0x{drva:x}, {dsize} bytes) is past the end of the file"
    if stype == 9 and rva + 16 <= len(head):                   # Memory64ListStream
        n, base = struct.unpack_from("<QQ", head, rva)
        total = 0
        for i in range(min(n, (len(head) - rva - 16) // 16)):
            total += struct.unpack_from("<QQ", head, rva + 16 + 16 * i)[1]
        if base + total > size:
            return f"truncated: memory data ({total} bytes from rva 0x{base:x}) runs past the end of the file"
    return ""


def _netmon_problems(head: bytes, size: int) -> tuple[str, ...]:
    if size < 40 or len(head) < 64:
        return ("truncated: Network Monitor header incomplete",)
    names = ("frame table", "user data", "comment data", None, "extended info")
    for i, name in enumerate(names):
        if name is None:
            continue                                           # a (offset, count) pair
        off, length = struct.unpack_from("<II", head, 24 + 8 * i)
        if off and off + length > size:
            return (f"truncated: {name} at 0x{off:x} ({length} bytes) runs past the end of the file",)
    return ()


def _elf(head: bytes, size: int, name: str) -> Sniff:
    if len(head) < 20:
        # e_type is gone: the name is all that is left to tell a core from a program
        base = name.rsplit("/", 1)[-1].lower()
        kind = _K.ELF_CORE if base == "core" or base.startswith("core.") or base.endswith(".core") else _K.EXECUTABLE
        return Sniff(kind, "elf", ("truncated: ELF header incomplete",))
    cls = {1: "elf32", 2: "elf64"}.get(head[4], "elf")
    endian = "<" if head[5] != 2 else ">"
    (etype,) = struct.unpack_from(endian + "H", head, 16)
    (machine,) = struct.unpack_from(endian + "H", head, 18)
    meta = (("elf_type", {1: "rel", 2: "exec", 3: "dyn", 4: "core"}.get(etype, str(etype))),
            ("machine", machine), ("endian", "little" if endian == "<" else "big"))
    problems = (f"unknown ELF class {head[4]}",) if cls == "elf" else _elf_segments_problems(head, size, cls, endian)
    if etype == 4:
        return Sniff(_K.ELF_CORE, cls, problems, meta)
    return Sniff(_K.EXECUTABLE, cls, problems, meta)


def _elf_segments_problems(head: bytes, size: int, cls: str, e: str) -> tuple[str, ...]:
    """A file cut short: program headers or segment data past the end of the file."""
    if cls == "elf64":
        if len(head) < 64:
            return ("truncated: ELF header incomplete",)
        phoff, = struct.unpack_from(e + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(e + "HH", head, 54)
        fmt, off_at, filesz_at = e + "QQ", 8, 32
    else:
        if len(head) < 52:
            return ("truncated: ELF header incomplete",)
        phoff, = struct.unpack_from(e + "I", head, 28)
        phentsize, phnum = struct.unpack_from(e + "HH", head, 42)
        fmt, off_at, filesz_at = e + "II", 4, 16
    if cls == "elf64":
        (shoff,) = struct.unpack_from(e + "Q", head, 40)
        shentsize, shnum = struct.unpack_from(e + "HH", head, 58)
    else:
        (shoff,) = struct.unpack_from(e + "I", head, 32)
        shentsize, shnum = struct.unpack_from(e + "HH", head, 46)
    if shnum and shoff + shnum * shentsize > size:
        return (f"truncated: section headers at 0x{shoff:x} run past the end of the file ({size} bytes)",)
    wide = cls == "elf64"
    for i in range(shnum):
        base = shoff + i * shentsize
        if base + (40 if wide else 24) > len(head):
            break
        (sh_type,) = struct.unpack_from(e + "I", head, base + 4)
        sh_offset, sh_size = struct.unpack_from(e + ("QQ" if wide else "II"), head, base + (24 if wide else 16))
        if sh_type != 8 and sh_size and sh_offset + sh_size > size:       # 8 = SHT_NOBITS
            return (f"truncated: section {i} ends at 0x{sh_offset + sh_size:x}, past the end of the "
                    f"file (0x{size:x})",)
    if phnum and phoff + phnum * phentsize > size:
        return (f"truncated: program headers at 0x{phoff:x} run past the end of the file ({size} bytes)",)
    for i in range(phnum):
        base = phoff + i * phentsize
        if base + filesz_at + (8 if cls == "elf64" else 4) > len(head):
            break
        (p_offset,) = struct.unpack_from(fmt[0] + fmt[1], head, base + off_at)
        (p_filesz,) = struct.unpack_from(fmt[0] + fmt[1], head, base + filesz_at)
        if p_filesz and p_offset + p_filesz > size:
            return (f"truncated: segment {i} ends at 0x{p_offset + p_filesz:x}, past the end of the "
                    f"file (0x{size:x})",)
    return ()


def _pe(head: bytes) -> Sniff | None:
    if len(head) < 0x40:
        return None
    (lfanew,) = struct.unpack_from("<I", head, 0x3C)
    if lfanew + 26 > len(head):
        if 0x40 <= lfanew < (1 << 20):
            return Sniff(_K.EXECUTABLE, "pe", ("PE header beyond the part of the file read",))
        return None
    if head[lfanew:lfanew + 4] != b"PE\x00\x00":
        return None
    (magic,) = struct.unpack_from("<H", head, lfanew + 24)
    fmt = {0x10B: "pe32", 0x20B: "pe32+"}.get(magic, "pe")
    (characteristics,) = struct.unpack_from("<H", head, lfanew + 22)
    meta = (("dll", bool(characteristics & 0x2000)),)
    return Sniff(_K.EXECUTABLE, fmt, (), meta)


def _pcap(head: bytes, size: int, fmt: str) -> Sniff:
    problems = ("truncated: pcap global header needs 24 bytes",) if size < 24 else ()
    return Sniff(_K.CAPTURE, fmt, problems)


def _evtx(head: bytes, size: int) -> Sniff:
    problems: list[str] = []
    meta: list[tuple[str, object]] = []
    if len(head) >= 0x7C:
        (flags,) = struct.unpack_from("<I", head, 0x78)
        meta.append(("dirty", bool(flags & 1)))
    if len(head) >= 0x2C:
        (chunks,) = struct.unpack_from("<H", head, 0x2A)
        meta.append(("chunks_in_header", chunks))
        if chunks and size < 0x1000 + chunks * 0x10000:
            problems.append(f"truncated: the header lists {chunks} chunks of 64 KiB, the file holds "
                            f"{max(0, size - 0x1000) / 0x10000:.1f}")
    if size < 0x1000 + 0x200:
        problems.append("truncated: no event chunk after the file header")
    elif (size - 0x1000) % 0x10000 and not problems:
        problems.append(f"truncated: the last chunk is partial ({(size - 0x1000) % 0x10000} of 65536 bytes)")
    elif len(head) >= 0x1008 and head[0x1000:0x1008] != b"ElfChnk\x00":
        problems.append("first chunk at offset 0x1000 lacks the ElfChnk signature")
    return Sniff(_K.EVTX, "evtx", tuple(problems), tuple(meta))


def sniff_binary(head: bytes, size: int, name: str = "") -> Sniff | None:
    """Classify by magic bytes; ``None`` when no binary signature matches."""
    h4 = head[:4]
    if h4 == b"MDMP":
        return _minidump(head, size)
    if h4 == b"\x7fELF":
        return _elf(head, size, name)
    if h4 in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4"):
        return _pcap(head, size, "pcap")
    if h4 in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"):
        return _pcap(head, size, "pcap-ns")
    if h4 == b"\x0a\x0d\x0d\x0a":
        if len(head) >= 12 and head[8:12] in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
            return Sniff(_K.CAPTURE, "pcapng")
        return Sniff(_K.CAPTURE, "pcapng", ("pcapng section header without a byte-order magic",))
    if h4 == b"GMBU":
        return Sniff(_K.CAPTURE, "netmon2", _netmon_problems(head, size))
    if h4 == b"RTSS":
        return Sniff(_K.CAPTURE, "netmon1")
    if head.startswith(b"snoop\x00\x00\x00"):
        return Sniff(_K.CAPTURE, "snoop")
    if head.startswith(b"ElfFile\x00"):
        return _evtx(head, size)
    if head[4:8] == b"LfLe" and head[:4] == b"\x30\x00\x00\x00":
        return Sniff(_K.EVTX, "evt", ("legacy Windows NT .evt event log (not EVTX)",))
    if h4 in (b"\xfe\xed\xfa\xce", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xcf\xfa\xed\xfe"):
        return Sniff(_K.EXECUTABLE, "macho")
    if head[:2] == b"MZ":
        pe = _pe(head)
        if pe is not None:
            return pe
    if head.startswith(b"SQLite format 3\x00"):
        return Sniff(_K.DATA, "sqlite")
    if h4 == b"PAR1":
        return Sniff(_K.DATA, "parquet")
    if head.startswith(b"%PDF-"):
        return Sniff(_K.DOCUMENT, "pdf")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniff(_K.UNKNOWN, "png")
    if head[:3] == b"\xff\xd8\xff":
        return Sniff(_K.UNKNOWN, "jpeg")
    if head.startswith((b"PAGEDUMP", b"PAGEDU64")):
        return Sniff(_K.UNKNOWN, "windows-kernel-dump",
                     ("Windows kernel memory dump: not supported yet",))
    return None
