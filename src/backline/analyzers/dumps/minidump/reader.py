"""Bounds-checked little-endian reading of a minidump's bytes.

Every read names the offset it tried, so a corrupt dump fails with a
:class:`~backline.errors.FormatError` that says where, never an ``IndexError``.

>>> r = Reader(b"MDMP\\x93\\xa7\\x00\\x00", "x.dmp")
>>> hex(r.u32(4))
'0xa793'
>>> r.u32(6)
Traceback (most recent call last):
...
backline.errors.TruncatedError: x.dmp offset:0x6: need 4 bytes at 0x6, file has 8
"""

from __future__ import annotations

import struct

from backline.errors import FormatError, TruncatedError

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


class Reader:
    """Read fixed-size little-endian values from ``data`` with bounds checks."""

    __slots__ = ("data", "name", "size")

    def __init__(self, data: bytes | memoryview, name: str = "<minidump>") -> None:
        self.data = data
        self.name = name
        self.size = len(data)

    def check(self, offset: int, length: int) -> None:
        """Raise :class:`TruncatedError` unless ``[offset, offset+length)`` is inside the data."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise TruncatedError(
                f"need {length} bytes at {offset:#x}, file has {self.size}",
                artifact=self.name, locator=f"offset:{offset:#x}")

    def bytes(self, offset: int, length: int) -> bytes:
        self.check(offset, length)
        return bytes(self.data[offset:offset + length])

    def u16(self, offset: int) -> int:
        self.check(offset, 2)
        return _U16.unpack_from(self.data, offset)[0]

    def u32(self, offset: int) -> int:
        self.check(offset, 4)
        return _U32.unpack_from(self.data, offset)[0]

    def u64(self, offset: int) -> int:
        self.check(offset, 8)
        return _U64.unpack_from(self.data, offset)[0]

    def unpack(self, fmt: struct.Struct, offset: int) -> tuple:
        self.check(offset, fmt.size)
        return fmt.unpack_from(self.data, offset)

    def count(self, count: int, entry_size: int, offset: int, limit: int, what: str) -> int:
        """Validate a record count: ``count`` entries of ``entry_size`` from ``offset`` must fit
        in ``limit`` bytes (the stream size) and in the file."""
        need = count * entry_size
        if need > limit or offset + need > self.size:
            raise FormatError(
                f"{what}: {count} records of {entry_size} bytes do not fit in {min(limit, self.size - offset)} bytes",
                artifact=self.name, locator=f"offset:{offset:#x}")
        return count

    def md_string(self, rva: int, max_chars: int = 32768) -> str:
        """A MINIDUMP_STRING: u32 byte length then UTF-16LE text."""
        length = self.u32(rva)
        if length % 2 or length > max_chars * 2:
            raise FormatError(f"string length {length} is not valid", artifact=self.name,
                              locator=f"offset:{rva:#x}")
        raw = self.bytes(rva + 4, length)
        return raw.decode("utf-16-le", errors="replace")

    def utf8_string(self, rva: int, max_len: int = 1 << 20) -> str:
        """A Breakpad/Crashpad MinidumpUTF8String: u32 length then bytes."""
        length = self.u32(rva)
        if length > max_len:
            raise FormatError(f"string length {length} is too large", artifact=self.name,
                              locator=f"offset:{rva:#x}")
        return self.bytes(rva + 4, length).decode("utf-8", errors="replace")

    def cstring(self, offset: int, limit: int) -> str:
        """NUL-terminated text within ``limit`` bytes (the rest of a record)."""
        end = min(self.size, offset + max(0, limit))
        raw = bytes(self.data[offset:end])
        nul = raw.find(b"\0")
        if nul >= 0:
            raw = raw[:nul]
        return raw.decode("utf-8", errors="replace")
