"""Breakpad *microdumps*: the text dump Android's crash handler writes into logcat
(``-----BEGIN BREAKPAD MICRODUMP-----``), read into the same :class:`Minidump` records so the
same walker, symbols and analysis apply.

Lines (each may carry a logcat prefix such as ``W/google-breakpad( 3728): ``):
``O <A|L> <arch> <cpus hex> <hw arch> <os version...>``, ``C <hex CPU context>``,
``S 0 <sp> <stack start> <stack size>`` then ``S <address> <hex bytes>`` chunks,
``M <base> <offset> <size> <debug id> <name>``, ``G <gpu>``, ``H`` (heap info), ``V`` (version).
"""

from __future__ import annotations

import re
from pathlib import Path

from backline.analyzers.dumps.minidump import types as T
from backline.analyzers.dumps.minidump.context import parse_context
from backline.analyzers.dumps.minidump.reader import Reader
from backline.errors import FormatError

BEGIN = "-----BEGIN BREAKPAD MICRODUMP-----"
END = "-----END BREAKPAD MICRODUMP-----"
MAX_BYTES = 64 << 20
_PREFIX = re.compile(r"^.*?(?=[A-Z] |-----)")
_ARCH = {"arm64": ("arm64", 12), "arm": ("arm", 5), "x86": ("x86", 0), "x86_64": ("amd64", 9),
         "amd64": ("amd64", 9), "mips": ("mips", 1), "mips64": ("mips64", 0x8004)}


def is_microdump(head: bytes) -> bool:
    return BEGIN.encode() in head


def read_microdump(path: Path | str, name: str | None = None) -> T.Minidump:
    """Parse a microdump (from a file that may hold other log lines around it)."""
    path = Path(path)
    name = name or path.name
    if path.stat().st_size > MAX_BYTES:
        raise FormatError("microdump text is larger than 64 MiB", artifact=name)
    lines = path.read_text("utf-8", errors="replace").splitlines()
    return parse_microdump(lines, name)


def parse_microdump(lines: list[str], name: str = "<microdump>") -> T.Minidump:
    md = T.Minidump(path=name, version=0, flags=0, timestamp=0)
    inside = False
    stack_start = stack_size = sp = None
    chunks: list[tuple[int, bytes]] = []
    ctx_hex = None
    for no, raw in enumerate(lines, 1):
        m = _PREFIX.match(raw)
        line = raw[m.end():] if m else raw
        if line.startswith(BEGIN):
            inside = True
            continue
        if line.startswith(END):
            break
        if not inside or len(line) < 2 or line[1] != " ":
            continue
        kind, rest = line[0], line[2:].split()
        try:
            if kind == "O" and len(rest) >= 4:
                cpu, arch_id = _ARCH.get(rest[1], ("unknown", 0xFFFF))
                md.system_info = T.MdSystemInfo(
                    cpu=cpu, processor_architecture=arch_id, processor_level=0, processor_revision=0,
                    cpu_count=int(rest[2], 16), product_type=0, major=0, minor=0, build=0,
                    platform_id=0x8203 if rest[0] == "A" else 0x8201, csd_version=" ".join(rest[4:]),
                    vendor_id=None, os="Android" if rest[0] == "A" else "Linux")
            elif kind == "C" and rest:
                ctx_hex = rest[0]
            elif kind == "S" and rest:
                if rest[0] == "0" and len(rest) >= 4:
                    sp, stack_start, stack_size = (int(x, 16) for x in rest[1:4])
                elif len(rest) >= 2:
                    chunks.append((int(rest[0], 16), bytes.fromhex(rest[1])))
            elif kind == "M" and len(rest) >= 5:
                base, _off, size = (int(x, 16) for x in rest[:3])
                md.modules.append(T.MdModule(base, size, 0, 0, " ".join(rest[4:]), None,
                                             " ".join(rest[4:]), rest[3], None))
        except ValueError as exc:
            raise FormatError(f"bad '{kind}' record: {exc}", artifact=name, locator=f"line:{no}")
    if not inside:
        raise FormatError("no BEGIN BREAKPAD MICRODUMP marker", artifact=name, locator="line:1")
    if md.system_info is None or ctx_hex is None:
        raise FormatError("microdump without O (system) or C (context) record", artifact=name)
    try:
        raw_ctx = bytes.fromhex(ctx_hex)
    except ValueError:
        raise FormatError("C record is not hex", artifact=name)
    ctx = parse_context(Reader(raw_ctx, name), 0, len(raw_ctx), md.system_info.cpu)
    if stack_start is not None and chunks:
        buf = bytearray(stack_size or 0)
        for addr, data in chunks:
            off = addr - stack_start
            if 0 <= off and off + len(data) <= len(buf):
                buf[off:off + len(data)] = data
        md.memory_regions.append(T.MemoryRegion(stack_start, bytes(buf)))
    else:
        md.warnings.append("microdump holds no stack memory")
    md.memory = T.Memory(md.memory_regions)
    md.threads.append(T.MdThread(0, 0, 0, 0, 0, stack_start or 0, stack_size or 0, 0, ctx))
    # a microdump has no exception record: the dumped thread is the requesting thread
    md.breakpad_info = {"dump_thread_id": None, "requesting_thread_id": 0}
    return md
