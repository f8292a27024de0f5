"""A tiny minidump *writer* for tests: builds amd64 Linux or Windows dumps with chosen threads,
registers, memory and modules, so hang analysis and scale can be tested through the real parser."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field


@dataclass
class FakeThread:
    tid: int
    regs: dict[str, int]
    stack_base: int = 0
    stack: bytes = b""


@dataclass
class FakeModule:
    name: str
    base: int
    size: int
    build_id: bytes = b""


@dataclass
class DumpSpec:
    threads: list[FakeThread] = field(default_factory=list)
    modules: list[FakeModule] = field(default_factory=list)
    memory: list[tuple[int, bytes]] = field(default_factory=list)
    platform: int = 0x8201            # Linux
    exception_tid: int | None = None
    exception_code: int = 11


_AMD64 = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11",
          "r12", "r13", "r14", "r15", "rip")


def _context(regs: dict[str, int]) -> bytes:
    buf = bytearray(1232)
    struct.pack_into("<I", buf, 48, 0x0010000F)
    struct.pack_into("<17Q", buf, 120, *(regs.get(r, 0) for r in _AMD64))
    return bytes(buf)


def _utf16(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return struct.pack("<I", len(raw)) + raw + b"\0\0"


def build(spec: DumpSpec) -> bytes:
    """Serialise ``spec`` as a minidump (header, directory, streams, data)."""
    blobs = bytearray()
    base = 32 + 12 * 5                 # header + directory of 5 streams

    def put(data: bytes) -> int:
        rva = base + len(blobs)
        blobs.extend(data)
        while len(blobs) % 8:
            blobs.append(0)
        return rva

    streams: list[tuple[int, int, int]] = []
    # system info
    csd = put(_utf16("Linux 5.10.0 #1 SMP x86_64" if spec.platform == 0x8201 else "Service Pack 1"))
    si = struct.pack("<HHHBBIIIIIHH", 9, 6, 0x3f02, 2, 1, 0 if spec.platform == 0x8201 else 10, 0, 0,
                     spec.platform, csd, 0, 0) + bytes(24)
    streams.append((7, len(si), put(si)))
    # threads
    entries = bytearray(struct.pack("<I", len(spec.threads)))
    for t in spec.threads:
        ctx = _context(t.regs)
        crva = put(ctx)
        srva = put(t.stack) if t.stack else 0
        entries += struct.pack("<IIIIQQIIII", t.tid, 0, 0, 0, 0, t.stack_base, len(t.stack), srva,
                               len(ctx), crva)
    streams.append((3, len(entries), put(bytes(entries))))
    # modules
    mods = bytearray(struct.pack("<I", len(spec.modules)))
    for m in spec.modules:
        name = put(_utf16(m.name))
        cv = struct.pack("<I", 0x4270454C) + (m.build_id or bytes(range(16)))
        cvrva = put(cv)
        mods += struct.pack("<QIIII13IIIIIQQ", m.base, m.size, 0, 0, name, *([0] * 13), len(cv), cvrva,
                            0, 0, 0, 0)
    streams.append((4, len(mods), put(bytes(mods))))
    # memory
    mem = bytearray(struct.pack("<I", len(spec.memory)))
    for addr, data in spec.memory:
        mem += struct.pack("<QII", addr, len(data), put(data))
    streams.append((5, len(mem), put(bytes(mem))))
    # exception (or a Breakpad-less "unused" entry)
    if spec.exception_tid is not None:
        t = next(t for t in spec.threads if t.tid == spec.exception_tid)
        ctx = _context(t.regs)
        crva = put(ctx)
        exc = struct.pack("<IIIIQQII15QII", t.tid, 0, spec.exception_code, 0, 0, t.regs.get("rip", 0), 0, 0,
                          *([0] * 15), len(ctx), crva)
        streams.append((6, len(exc), put(exc)))
    else:
        streams.append((0, 0, 0))
    header = struct.pack("<IIIIIIQ", 0x504D444D, 0xA793, len(streams), 32, 0, 1_600_000_000, 0)
    directory = b"".join(struct.pack("<III", *s) for s in streams)
    return header + directory + bytes(blobs)
