"""Rewrite a Network Monitor 2.0 capture (as ``editcap -F netmon2`` writes it) as 2.1, 2.2
or 2.3: the same frames, each followed by the record trailer of that version (2.1: the
frame's network type; 2.2: + process-info index; 2.3: + UTC time stamp as a FILETIME and
a time-zone index, 15 bytes), a new frame table, optionally the frame table *before* the
frames (a file may put it anywhere; readers follow the header's offset).

Facts of the format (Microsoft's Network Monitor 3 documentation and the 2.3 captures of
the corpus, whose frames lie exactly 15 trailer bytes apart); the code is written here.
"""

from __future__ import annotations

import struct

EPOCH_1601_NS = 11_644_473_600 * 1_000_000_000


def rewrite(src: bytes, minor: int, *, table_first: bool = False, local_offset_s: int = 0,
            network: int = 1) -> bytes:
    assert src[:4] == b"GMBU" and src[5] == 2 and src[4] == 0, "expects a Network Monitor 2.0 file"
    y, mo, dow, d, h, mi, s, ms = struct.unpack_from("<8H", src, 8)
    ft_off, ft_len = struct.unpack_from("<II", src, 24)
    offsets = struct.unpack_from(f"<{ft_len // 4}I", src, ft_off)
    from datetime import datetime, timezone
    start = datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=timezone.utc)
    start_ns = int(start.timestamp()) * 1_000_000_000 + ms * 1_000_000
    frames = []
    for off in offsets:
        delta_us, orig, incl = struct.unpack_from("<QII", src, off)
        data = src[off + 16:off + 16 + incl]
        trailer = b""
        if minor >= 1:
            trailer += struct.pack("<H", network)
        if minor >= 2:
            trailer += struct.pack("<I", 0)
        if minor >= 3:
            ft = (start_ns + delta_us * 1000 + EPOCH_1601_NS) // 100
            trailer += struct.pack("<QB", ft, 0)
        frames.append((delta_us, orig, incl, data + trailer))
    header = bytearray(src[:128]) if len(src) >= 128 else bytearray(src[:ft_off])
    header = bytearray(header[:128].ljust(128, b"\0"))
    header[4] = minor
    if local_offset_s:
        # the header's start time is the capturing machine's local time in 2.3 files;
        # the trailers keep UTC
        local = datetime.fromtimestamp(start.timestamp() + local_offset_s, tz=timezone.utc)
        struct.pack_into("<8H", header, 8, local.year, local.month, (local.weekday() + 1) % 7,
                         local.day, local.hour, local.minute, local.second, ms)
        delta_shift = 0
    else:
        delta_shift = 0
    hsize = 128
    table_size = 4 * len(frames)
    pos = hsize + (table_size if table_first else 0)
    body = bytearray()
    offs = []
    for delta_us, orig, incl, data in frames:
        offs.append(pos + len(body))
        body += struct.pack("<QII", delta_us + delta_shift, orig, incl) + data
    table = struct.pack(f"<{len(offs)}I", *offs)
    struct.pack_into("<II", header, 24, hsize if table_first else hsize + len(body), table_size)
    # no other tables (user data, comments, process info, extended info)
    for o in range(32, 72, 4):
        struct.pack_into("<I", header, o, 0)
    return bytes(header) + (table + bytes(body) if table_first else bytes(body) + table)
