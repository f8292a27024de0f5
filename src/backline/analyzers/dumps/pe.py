"""PE images of a Windows process: headers, exports, and x64 unwinding with ``.pdata``/``.xdata``.

A minidump written with full memory holds the images of its modules; otherwise the
engineer may give the PE files (``--binaries``).  Either way an image is read through
one function, ``read(rva, size) -> bytes | None``, so the same code serves both.

x64 Windows code keeps no frame-pointer chain; every non-leaf function has a
``RUNTIME_FUNCTION`` in the exception directory (``.pdata``) pointing at its
``UNWIND_INFO`` (``.xdata``): the prolog's operations in reverse order.  Undoing them
gives the caller's ``rsp``, ``rip`` and the non-volatile registers — what WinDbg does
without symbols.  The format is Microsoft's "x64 exception handling" document.

>>> img = PeImage.from_bytes(_tiny_pe(), "tiny.dll")
>>> img.machine, img.exports[:1], img.function_at(0x1005)
(34404, [(4096, 'work')], (4096, 4128, 8256))
>>> regs = img.unwind(0x1010, {"rsp": 0x5000, "rbp": 7}, {0x5000: 11, 0x5008: 0x77, 0x5010: 0x401234}.get,
...                   first=False)
>>> hex(regs["rip"]), hex(regs["rsp"]), hex(regs["rbp"])    # sub rsp, 8 and push rbp undone
('0x401234', '0x5018', '0x77')
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

MACHINE_AMD64 = 0x8664
MACHINE_I386 = 0x14C
MAX_EXPORTS = 200_000
MAX_FUNCTIONS = 2_000_000
MAX_CHAIN = 32

#: x64 register numbers in unwind codes
REGS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
#: registers a called function must preserve (Microsoft x64 calling convention)
NONVOLATILE = ("rbx", "rbp", "rdi", "rsi", "r12", "r13", "r14", "r15")

UWOP_PUSH_NONVOL, UWOP_ALLOC_LARGE, UWOP_ALLOC_SMALL, UWOP_SET_FPREG = 0, 1, 2, 3
UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR, UWOP_EPILOG, UWOP_SPARE = 4, 5, 6, 7
UWOP_SAVE_XMM128, UWOP_SAVE_XMM128_FAR, UWOP_PUSH_MACHFRAME = 8, 9, 10
UNW_FLAG_CHAININFO = 4


def _slots(op: int, info: int) -> int:
    """How many 2-byte slots an unwind code takes."""
    if op == UWOP_ALLOC_LARGE:
        return 2 if info == 0 else 3
    if op in (UWOP_SAVE_NONVOL, UWOP_SAVE_XMM128, UWOP_EPILOG):
        return 2
    if op in (UWOP_SAVE_NONVOL_FAR, UWOP_SAVE_XMM128_FAR, UWOP_SPARE):
        return 3
    return 1


@dataclass(slots=True)
class PeImage:
    """One PE image: ``read(rva, size)`` gives its bytes as mapped in memory."""

    name: str
    read: Callable[[int, int], bytes | None]
    machine: int = 0
    timestamp: int = 0
    size_of_image: int = 0
    exports: list[tuple[int, str]] = field(default_factory=list)     # (rva, name), by rva
    _export_rvas: list[int] = field(default_factory=list)
    _func_starts: list[int] = field(default_factory=list)
    _funcs: list[tuple[int, int, int]] = field(default_factory=list)  # (begin, end, unwind info rva)

    # ------------------------------------------------------------ opening
    @classmethod
    def parse(cls, name: str, read: Callable[[int, int], bytes | None]) -> "PeImage | None":
        """The image, or ``None`` when ``read`` does not give a PE header."""
        dos = read(0, 64)
        if dos is None or dos[:2] != b"MZ":
            return None
        lfanew = struct.unpack_from("<I", dos, 0x3C)[0]
        hdr = read(lfanew, 24 + 240)
        if hdr is None or hdr[:4] != b"PE\0\0":
            return None
        machine, _nsec, timestamp = struct.unpack_from("<HHI", hdr, 4)
        magic = struct.unpack_from("<H", hdr, 24)[0]
        if magic == 0x20B:
            size_of_image = struct.unpack_from("<I", hdr, 24 + 56)[0]
            ndirs, dir_off = struct.unpack_from("<I", hdr, 24 + 108)[0], 24 + 112
        elif magic == 0x10B:
            size_of_image = struct.unpack_from("<I", hdr, 24 + 56)[0]
            ndirs, dir_off = struct.unpack_from("<I", hdr, 24 + 92)[0], 24 + 96
        else:
            return None
        dirs = []
        for i in range(min(ndirs, 16)):
            if dir_off + 8 * i + 8 > len(hdr):
                break
            dirs.append(struct.unpack_from("<II", hdr, dir_off + 8 * i))
        img = cls(name, read, machine, timestamp, size_of_image)
        if len(dirs) > 0:
            img._read_exports(*dirs[0])
        if len(dirs) > 3 and machine == MACHINE_AMD64:
            img._read_pdata(*dirs[3])
        return img

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> "PeImage | None":
        """An image from a PE file's bytes (sections placed at their RVAs)."""
        return cls.parse(name, _file_reader(data))

    @classmethod
    def from_file(cls, path: Path) -> "PeImage | None":
        try:
            data = Path(path).read_bytes()
        except OSError:
            return None
        return cls.from_bytes(data, Path(path).name)

    def _read_exports(self, rva: int, size: int) -> None:
        if not rva or size < 40:
            return
        d = self.read(rva, 40)
        if d is None:
            return
        nfuncs, nnames, a_funcs, a_names, a_ords = struct.unpack_from("<IIIII", d, 20)
        nfuncs, nnames = min(nfuncs, MAX_EXPORTS), min(nnames, MAX_EXPORTS)
        funcs = self.read(a_funcs, 4 * nfuncs) if nfuncs else b""
        names = self.read(a_names, 4 * nnames) if nnames else b""
        ords = self.read(a_ords, 2 * nnames) if nnames else b""
        if funcs is None or names is None or ords is None:
            return
        out = []
        for i in range(nnames):
            ordinal = struct.unpack_from("<H", ords, 2 * i)[0]
            if ordinal >= nfuncs:
                continue
            frva = struct.unpack_from("<I", funcs, 4 * ordinal)[0]
            if rva <= frva < rva + size:            # a forwarder ("NTDLL.RtlFoo"), not code
                continue
            nrva = struct.unpack_from("<I", names, 4 * i)[0]
            raw = self.read(nrva, 256) or b""
            name = raw.split(b"\0", 1)[0].decode("latin-1")
            if name:
                out.append((frva, name))
        out.sort()
        self.exports = out
        self._export_rvas = [r for r, _ in out]

    def _read_pdata(self, rva: int, size: int) -> None:
        n = min(size // 12, MAX_FUNCTIONS)
        raw = self.read(rva, 12 * n) if n else None
        if raw is None:
            return
        funcs = [struct.unpack_from("<III", raw, 12 * i) for i in range(n)]
        funcs = sorted(f for f in funcs if f[0] < f[1])
        self._funcs = funcs
        self._func_starts = [f[0] for f in funcs]

    # ------------------------------------------------------------ lookups
    @property
    def has_unwind_info(self) -> bool:
        return bool(self._funcs)

    def function_at(self, rva: int) -> tuple[int, int, int] | None:
        """The ``RUNTIME_FUNCTION`` (begin, end, unwind info) covering ``rva``."""
        i = bisect.bisect_right(self._func_starts, rva) - 1
        if i >= 0 and rva < self._funcs[i][1]:
            return self._funcs[i]
        return None

    def export_at(self, rva: int) -> tuple[str, int] | None:
        """The nearest exported name at or below ``rva`` and the offset from it."""
        i = bisect.bisect_right(self._export_rvas, rva) - 1
        if i < 0:
            return None
        start, name = self.exports[i]
        return name, rva - start

    # ------------------------------------------------------------ unwinding
    def unwind(self, rva: int, regs: dict[str, int], read_u64: Callable[[int], int | None],
               first: bool) -> dict[str, int] | None:
        """The caller's registers, undoing the prolog of the function holding ``rva``.

        ``regs`` are the frame's known registers (``rsp`` at least); ``first`` says the
        frame is the context frame (its prolog may be only partly done).  A function without
        unwind info is a leaf: the return address is at ``rsp``.
        """
        rsp = regs.get("rsp")
        if rsp is None:
            return None
        new = {r: regs[r] for r in NONVOLATILE if r in regs}
        rf = self.function_at(rva)
        if rf is None:
            ra = read_u64(rsp)
            return None if ra is None else {**new, "rip": ra, "rsp": rsp + 8}
        offset = rva - rf[0]
        info_rva, partial = rf[2], first
        for _ in range(MAX_CHAIN):
            head = self.read(info_rva, 4)
            if head is None:
                return None
            ver_flags, _prolog, count, frame = head
            flags, frame_reg, frame_off = ver_flags >> 3, frame & 0xF, (frame >> 4) * 16
            codes = self.read(info_rva + 4, 2 * count) if count else b""
            if codes is None:
                return None
            i = 0
            while i < count:
                code_off, opinfo = codes[2 * i], codes[2 * i + 1]
                op, info = opinfo & 0xF, opinfo >> 4
                size = _slots(op, info)
                if i + size > count:
                    return None
                if not partial or offset >= code_off:
                    done = self._apply(op, info, codes, i, new, rsp, frame_reg, frame_off, read_u64)
                    if done is None:
                        return None
                    rsp, machframe = done
                    if machframe is not None:
                        return {**new, **machframe}
                i += size
            if not flags & UNW_FLAG_CHAININFO:
                break
            chained = self.read(info_rva + 4 + 2 * ((count + 1) & ~1), 12)
            if chained is None:
                return None
            info_rva, partial = struct.unpack_from("<III", chained)[2], False
        ra = read_u64(rsp)
        if ra is None:
            return None
        new["rip"], new["rsp"] = ra, rsp + 8
        return new

    @staticmethod
    def _apply(op: int, info: int, codes: bytes, i: int, regs: dict[str, int], rsp: int,
               frame_reg: int, frame_off: int, read_u64: Callable[[int], int | None]):
        """One unwind code: ``(new rsp, machine frame registers or None)``, or None if unreadable."""
        def slot(k: int) -> int:
            return struct.unpack_from("<H", codes, 2 * (i + k))[0]

        if op == UWOP_PUSH_NONVOL:
            v = read_u64(rsp)
            if v is None:
                return None
            regs[REGS[info]] = v
            return rsp + 8, None
        if op == UWOP_ALLOC_LARGE:
            size = slot(1) * 8 if info == 0 else slot(1) | (slot(2) << 16)
            return rsp + size, None
        if op == UWOP_ALLOC_SMALL:
            return rsp + info * 8 + 8, None
        if op == UWOP_SET_FPREG:
            base = regs.get(REGS[frame_reg])
            if base is None:
                return None
            return base - frame_off, None
        if op in (UWOP_SAVE_NONVOL, UWOP_SAVE_NONVOL_FAR):
            off = slot(1) * 8 if op == UWOP_SAVE_NONVOL else slot(1) | (slot(2) << 16)
            v = read_u64(rsp + off)
            if v is None:
                return None
            regs[REGS[info]] = v
            return rsp, None
        if op == UWOP_PUSH_MACHFRAME:
            base = rsp + (8 if info else 0)
            rip, new_rsp = read_u64(base), read_u64(base + 24)
            if rip is None or new_rsp is None:
                return None
            return rsp, {"rip": rip, "rsp": new_rsp}
        return rsp, None        # xmm saves and epilog descriptions move nothing we track


def _file_reader(data: bytes) -> Callable[[int, int], bytes | None]:
    """``read(rva, size)`` over a PE file: headers as they are, sections at their RVAs."""
    try:
        lfanew = struct.unpack_from("<I", data, 0x3C)[0]
        nsec = struct.unpack_from("<H", data, lfanew + 6)[0]
        opt = struct.unpack_from("<H", data, lfanew + 20)[0]
    except struct.error:
        return lambda rva, size: None
    sections = []
    base = lfanew + 24 + opt
    for k in range(min(nsec, 96)):
        try:
            vsize, vaddr, rsize, rptr = struct.unpack_from("<IIII", data, base + 40 * k + 8)
        except struct.error:
            break
        sections.append((vaddr, max(vsize, rsize), rptr, rsize))
    header_end = min(sections[0][0] if sections else len(data), len(data))

    def read(rva: int, size: int) -> bytes | None:
        if size < 0:
            return None
        if rva + size <= header_end:
            return data[rva:rva + size]
        for vaddr, vsize, rptr, rsize in sections:
            if vaddr <= rva and rva + size <= vaddr + vsize:
                off = rva - vaddr
                chunk = data[rptr + off:rptr + min(off + size, rsize)] if off < rsize else b""
                return chunk + b"\0" * (size - len(chunk))         # bss: zero-filled
        return None

    return read


def find_binary(name: str, folders: Sequence[Path], timestamp: int | None = None,
                size_of_image: int | None = None) -> Path | None:
    """A PE file called ``name`` (any case) in ``folders`` whose header matches the module
    (the code id is its time stamp and image size), else None."""
    want = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    for folder in folders:
        try:
            entries = list(Path(folder).iterdir())
        except OSError:
            continue
        for p in entries:
            if p.name.lower() != want or not p.is_file():
                continue
            try:
                head = p.read_bytes()[:4096]
            except OSError:
                continue
            img = PeImage.parse(p.name, _file_reader(head))
            if img is None:
                continue
            if timestamp is not None and img.timestamp != timestamp:
                continue
            if size_of_image is not None and img.size_of_image != size_of_image:
                continue
            return p
    return None


def _tiny_pe() -> bytes:
    """A minimal PE32+ image with one export (``work`` at 0x1000) and one function whose prolog
    is ``push rbp; sub rsp, 8`` (for the doctest)."""
    out = bytearray(0x3000)
    out[0:2] = b"MZ"
    struct.pack_into("<I", out, 0x3C, 0x80)
    out[0x80:0x84] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", out, 0x84, MACHINE_AMD64, 1, 0, 0, 0, 240, 0x22)
    opt = 0x98
    struct.pack_into("<H", out, opt, 0x20B)
    struct.pack_into("<I", out, opt + 56, 0x3000)
    struct.pack_into("<I", out, opt + 108, 16)
    struct.pack_into("<II", out, opt + 112, 0x2100, 40)          # export directory
    struct.pack_into("<II", out, opt + 112 + 24, 0x2000, 12)     # exception directory
    sec = opt + 240
    out[sec:sec + 8] = b".text\0\0\0"
    struct.pack_into("<IIII", out, sec + 8, 0x2000, 0x1000, 0x2000, 0x1000)
    struct.pack_into("<III", out, 0x2000, 0x1000, 0x1020, 0x2040)  # RUNTIME_FUNCTION
    out[0x2040:0x2048] = bytes([1, 5, 2, 0, 5, 0x02, 1, 0x50])      # ALLOC_SMALL 8 @5, PUSH rbp @1
    struct.pack_into("<IIIIIIIIII", out, 0x2100, 0, 0, 0, 0, 1, 1, 1, 0x2130, 0x2134, 0x2138)
    struct.pack_into("<I", out, 0x2130, 0x1000)
    struct.pack_into("<I", out, 0x2134, 0x2140)
    struct.pack_into("<H", out, 0x2138, 0)
    out[0x2140:0x2145] = b"work\0"
    return bytes(out)
