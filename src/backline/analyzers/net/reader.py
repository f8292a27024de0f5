"""Streaming readers for capture files: pcap, pcapng, Network Monitor 1.x and 2.x, gzip.

The reader never holds the whole file. For the analysis it hands the
records to the compiled engine (:meth:`CaptureReader.feed`; pcap records and
pcapng packet blocks are walked inside the read buffer there); for other
users :meth:`CaptureReader.packets` yields one tuple per record:
``(number, ts_ns, linktype, data, orig_len)`` where ``number`` is the 1-based
frame number (as in Wireshark), ``ts_ns`` nanoseconds since the Unix epoch
(UTC), ``linktype`` a pcap LINKTYPE_* value and ``data`` the captured bytes.

Damage stops the reading, never raises out of :meth:`CaptureReader.packets`:
every good record before it is yielded and :attr:`CaptureReader.problem` then
holds a :class:`~backline.errors.FormatError` naming the record and offset.

>>> import io, struct
>>> hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
>>> rec = struct.pack("<IIII", 1, 5, 3, 3) + b"abc"
>>> r = CaptureReader.from_bytes(hdr + rec + rec[:10], name="t.pcap")
>>> [(n, ts, lt, bytes(d)) for n, ts, lt, d, _ in r.packets()]
[(1, 1000005000, 1, b'abc')]
>>> str(r.problem)
't.pcap record:2 offset:0x2b: record header cut short (10 of 16 bytes)'
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from backline.analyzers.net._engine import Engine

from backline.errors import FormatError, TruncatedError
from backline.evidence.streams import StreamDecompressor

#: Largest record Wireshark accepts (WTAP_MAX_PACKET_SIZE_STANDARD).
MAX_RECORD = 262_144
_CHUNK = 4 << 20
_EPOCH_1601_NS = 11_644_473_600 * 1_000_000_000
_TS_MIN, _TS_MAX = -(1 << 63), (1 << 63) - 1     # nanosecond time stamps the analysis holds
#: What a damaged (compressed) stream raises while being read.
_STREAM_ERRORS = (EOFError, OSError, gzip.BadGzipFile, struct.error, zlib.error)

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000, "pcap"),
    b"\xa1\xb2\xc3\xd4": (">", 1000, "pcap"),
    b"\x4d\x3c\xb2\xa1": ("<", 1, "nsecpcap"),
    b"\xa1\xb2\x3c\x4d": (">", 1, "nsecpcap"),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
NETMON_MAGIC = b"GMBU"
NETMON1_MAGIC = b"RTSS"

#: Network Monitor media types -> pcap link types (wiretap's netmon table, trimmed).
_NETMON_MEDIA = {1: 1, 7: 101, 8: 101, 9: 101}
_NETMON_PCAP_BASE = 0xE000

Packet = tuple[int, int, int, bytes, int]


def sniff_format(head: bytes) -> str | None:
    """Name the capture format from the first bytes, or ``None``.

    >>> sniff_format(b"GMBU\\x00\\x02")
    'netmon2'
    """
    if head[:4] in PCAP_MAGICS:
        return PCAP_MAGICS[head[:4]][2]
    if head[:4] == PCAPNG_MAGIC:
        return "pcapng"
    if head[:4] == NETMON_MAGIC:
        return "netmon2"
    if head[:4] == NETMON1_MAGIC:
        return "netmon1"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    return None


class _Stream:
    """A forward-only buffered reader that remembers the absolute offset.

    The bytes live in one reusable ``bytearray`` (``buf[:end]`` is valid),
    filled with ``readinto``: no new block object, no page faults on fresh
    memory and no copy of the block per refill.  A compressed stream is read
    in small steps, and an error while reading is raised only when the
    reader reaches the bytes it could not get: every record before the
    damage is still handed out.
    """

    __slots__ = ("f", "buf", "pos", "end", "base", "eof", "step", "error")

    def __init__(self, f: BinaryIO, head: bytes = b"", step: int = _CHUNK):
        self.f = f
        self.buf = bytearray(head)
        self.end = len(head)
        self.pos = 0
        self.base = 0      # absolute offset of buf[0]
        self.eof = False
        self.step = step
        self.error: BaseException | None = None

    def need(self, n: int) -> bool:
        """Make ``n`` bytes available at ``pos``; False when the file ends first.

        Raises the stream's read error (``_STREAM_ERRORS``) when the bytes
        are missing because of it.
        """
        if self.pos + n <= self.end:
            return True
        if not self.eof:
            self._refill(n)
            if self.pos + n <= self.end:
                return True
        if self.error is not None:
            exc, self.error = self.error, None
            raise exc
        return False

    def _refill(self, n: int) -> None:
        rest = self.end - self.pos
        buf = self.buf
        size = max(_CHUNK, n + rest)
        if len(buf) < size:
            grown = bytearray(size)
            grown[:rest] = buf[self.pos:self.end]
            self.buf = buf = grown
        elif rest:
            buf[:rest] = buf[self.pos:self.end]
        self.base += self.pos
        self.pos = 0
        self.end = rest
        view = memoryview(buf)
        try:
            while self.end < len(buf):
                got = self.f.readinto(view[self.end:self.end + self.step])
                if not got:
                    self.eof = True
                    break
                self.end += got
        except _STREAM_ERRORS as exc:
            self.eof = True
            self.error = exc
        finally:
            view.release()

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def available(self) -> int:
        return self.end - self.pos


class CaptureReader:
    """Read the records of one capture file, streaming.

    ``format`` is ``pcap``, ``nsecpcap``, ``pcapng``, ``netmon1`` or ``netmon2``;
    ``compression`` is ``gzip`` when the file was gzip-compressed.
    """

    def __init__(self, f: BinaryIO, name: str = "capture"):
        self.name = name
        head = f.read(4)
        self.compression = ""
        self._raw = f
        if head[:2] == b"\x1f\x8b":
            # decompressed step by step: when the gzip stream is cut, every byte
            # decompressed before the cut is still read (as tshark's reader does);
            # gzip.GzipFile would drop the whole last read
            if f.seekable():
                f.seek(0)
                src: BinaryIO = f
            else:
                src = _Prefixed(head, f)  # type: ignore[assignment]
            f = StreamDecompressor(src, "gzip")  # type: ignore[assignment]
            try:
                head = f.read(4)
            except _STREAM_ERRORS as exc:
                raise FormatError(f"gzip stream unreadable: {exc}", artifact=name,
                                  locator="offset:0") from exc
            self.compression = "gzip"
            if sniff_format(head) in ("netmon1", "netmon2"):
                # Network Monitor files are read with random access (the frame table)
                if not self._raw.seekable():
                    raise FormatError("a gzip-compressed Network Monitor capture must be a "
                                      "seekable file", artifact=name, locator="offset:0")
                self._raw.seek(0)
                f = gzip.GzipFile(fileobj=self._raw)  # type: ignore[assignment]
                head = f.read(4)
        fmt = sniff_format(head)
        if fmt is None or fmt == "gzip":
            raise FormatError(f"not a capture file (magic {head.hex() or 'empty'})",
                              artifact=name, locator="offset:0")
        self.format = fmt
        self._s = _Stream(f, head, step=_CHUNK if not self.compression else 256 << 10)
        self.problem: FormatError | None = None
        self.warnings: list[str] = []
        self.linktypes: set[int] = set()
        self.interfaces = 0
        self.comments: list[str] = []
        self.count = 0
        self.bytes_read = 0
        self._backwards = 0
        self._absurd = 0

    @property
    def offset(self) -> int:
        """Bytes of the (decompressed) file consumed so far."""
        return self._s.offset

    @classmethod
    def open(cls, path: str | Path, name: str | None = None) -> "CaptureReader":
        """Open ``path`` (the file is closed when :meth:`packets` finishes)."""
        f = open(path, "rb")
        try:
            return cls(f, name or str(path))
        except BaseException:
            f.close()
            raise

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "capture") -> "CaptureReader":
        return cls(io.BytesIO(data), name)

    def _fail(self, exc_type: type[FormatError], message: str, record: int, offset: int) -> None:
        self.problem = exc_type(message, artifact=self.name,
                                locator=f"record:{record} offset:{offset:#x}")

    def packets(self) -> Iterator[Packet]:
        """Yield ``(number, ts_ns, linktype, data, orig_len)`` for every good record."""
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Packet]]:
        """Yield the records as lists (one per read block for pcap, else a few thousand).

        The same records as :meth:`packets`, in order.
        """
        if self.format in ("netmon1", "netmon2"):
            gen: Iterator[list[Packet]] = _grouped(self._netmon())
        else:
            collect: list[Packet] = []
            engine = Engine(collect=collect)
            steps = self._pcap(engine) if self.format != "pcapng" else self._pcapng(engine)

            def blocks() -> Iterator[list[Packet]]:
                for _ in steps:
                    if collect:
                        yield collect[:]
                        collect.clear()
                if collect:
                    yield collect[:]
            gen = blocks()
        yield from self._guarded(gen)

    def feed(self, engine: Engine, progress: Callable[[int], None] | None = None) -> None:
        """Hand every good record to ``engine`` (the compiled analysis, :mod:`._engine`).

        pcap and pcapng are walked by the engine itself, a read block at a
        time; Network Monitor files are read here and handed over frame by
        frame.  ``progress(offset)`` is called now and then with the bytes consumed.
        """
        if self.format in ("netmon1", "netmon2"):
            records = self._netmon()

            def steps() -> Iterator[None]:
                for n, ts, lt, data, orig in records:
                    self._hand(engine, ts, lt, data, orig)
                    if not n & 0xFFF:
                        yield None
                yield None
            run: Iterator[None] = steps()
        else:
            run = self._pcap(engine) if self.format != "pcapng" else self._pcapng(engine)
        for _ in self._guarded(run):
            if progress is not None:
                progress(self._s.offset)

    def _guarded(self, gen: Iterator) -> Iterator:
        """Run a reading generator; an unreadable stream ends it with :attr:`problem` set."""
        try:
            yield from gen
        except _STREAM_ERRORS as exc:
            # gzip damage or an unreadable tail: keep what was read.
            if self.problem is None:
                self._fail(TruncatedError, f"stream unreadable: {exc}", self.count + 1,
                           self._s.offset)
        finally:
            for f in (self._s.f, self._raw):
                try:
                    f.close()
                except Exception:  # pragma: no cover - best effort
                    pass
            if getattr(self._s.f, "truncated", False) and self.problem is None:
                self._fail(TruncatedError, "gzip stream cut short (every record before the cut "
                           "was read)", self.count + 1, self._s.offset)

    # ------------------------------------------------------------------ pcap
    def _pcap(self, engine: Engine) -> Iterator[None]:
        """Classic pcap: the engine walks the records that lie wholly in the buffer.

        Only a record that crosses the buffer's end refills it (and is checked
        for damage); one step is yielded per read block.
        """
        s = self._s
        if not s.need(24):
            self._fail(TruncatedError, "file header cut short", 0, 0)
            return
        endian, mult, _ = PCAP_MAGICS[bytes(s.buf[:4])]
        _, _, _, _, snaplen, network = struct.unpack_from(endian + "HHiIII", s.buf, 4)
        linktype = network & 0x03FF_FFFF
        self.linktypes.add(linktype)
        self.interfaces = 1
        s.pos = 24
        unpack = struct.Struct(endian + "IIII").unpack_from
        limit = max(MAX_RECORD, snaplen if snaplen < 0x1000_0000 else 0)
        big = endian == ">"
        block = engine.pcap_block
        n0 = engine.n
        try:
            while True:
                s.pos = block(s.buf, s.pos, s.end, linktype, mult, big, limit)
                self.count = engine.n - n0
                yield None
                n = self.count
                # the next record is not wholly in the buffer (or is damaged)
                if not s.need(16):
                    if s.available():
                        self._fail(TruncatedError,
                                   f"record header cut short ({s.available()} of 16 bytes)",
                                   n + 1, s.offset)
                    break
                incl = unpack(s.buf, s.pos)[2]
                if incl > limit:
                    self._fail(FormatError, f"record length {incl} exceeds the maximum {limit}",
                               n + 1, s.offset)
                    break
                if not s.need(16 + incl):
                    self._fail(TruncatedError,
                               f"record data cut short ({s.available() - 16} of {incl} bytes)",
                               n + 1, s.offset)
                    break
        finally:
            self._backwards += engine.backwards
            self.count = engine.n - n0
        self._finish()

    # ---------------------------------------------------------------- pcapng
    def _pcapng(self, engine: Engine) -> Iterator[None]:
        """pcapng: runs of Enhanced Packet Blocks are walked by the engine; every
        other block (and any EPB the engine leaves, e.g. a damaged one) is read
        here.  One step is yielded per engine walk and per 4,096 blocks read here.
        """
        s = self._s
        n0 = engine.n
        b0 = engine.backwards
        endian = "<"
        ifaces: list[tuple[int, int, int]] = []   # (linktype, ns per tick, tsoffset ns)
        total_ifaces = 0
        walk = engine.pcapng_block
        k = 0
        while True:
            n = self.count = engine.n - n0
            k += 1
            if not k & 0xFFF:
                yield None
            if not s.need(12):
                if s.available():
                    self._fail(TruncatedError, f"block header cut short ({s.available()} bytes)",
                               n + 1, s.offset)
                break
            buf, pos = s.buf, s.pos
            btype = buf[pos:pos + 4]
            if btype == PCAPNG_MAGIC:
                bom = buf[pos + 8:pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    endian = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    endian = ">"
                else:
                    self._fail(FormatError, f"bad byte-order magic {bom.hex()}", n + 1, s.offset)
                    break
                ifaces = []
            (btype_i, blen) = struct.unpack_from(endian + "II", buf, pos)
            if btype_i == 6 and ifaces:
                reached = walk(buf, pos, s.end, endian == ">", ifaces)
                if reached != pos:
                    s.pos = reached
                    yield None
                    continue
            if blen < 12 or blen % 4 or blen > 0x0400_0000:
                self._fail(FormatError, f"block length {blen} invalid (block type {btype_i:#x})",
                           n + 1, s.base + pos)
                break
            if not s.need(blen):
                self._fail(TruncatedError, f"block cut short ({s.available()} of {blen} bytes)",
                           n + 1, s.offset)
                break
            buf, pos = s.buf, s.pos
            body = pos + 8
            end = pos + blen - 4
            s.pos = pos + blen
            if btype_i == 6 or btype_i == 2:   # EPB / obsolete packet block
                if btype_i == 6:
                    iface, th, tl, incl, orig = struct.unpack_from(endian + "IIIII", buf, body)
                else:
                    iface, _drops, th, tl, incl, orig = struct.unpack_from(endian + "HHIIII", buf, body)
                data_off = body + 20
                if iface >= len(ifaces):
                    self._fail(FormatError, f"packet on undeclared interface {iface}",
                               n + 1, s.base + pos)
                    break
                if data_off + incl > end:
                    self._fail(FormatError, f"captured length {incl} exceeds its block",
                               n + 1, s.base + pos)
                    break
                lt, tick, tsoff = ifaces[iface]
                ts = ((th << 32) | tl) * tick + tsoff if tick >= 1 else \
                    int(((th << 32) | tl) * tick) + tsoff
                if _TS_MIN <= ts <= _TS_MAX:
                    engine.order(ts)
                self._hand(engine, ts, lt, bytes(buf[data_off:data_off + incl]), orig)
            elif btype_i == 3:                 # simple packet block
                if not ifaces:
                    self._fail(FormatError, "simple packet block before any interface",
                               n + 1, s.base + pos)
                    break
                (orig,) = struct.unpack_from(endian + "I", buf, body)
                incl = min(orig, end - body - 4)
                self._hand(engine, 0, ifaces[0][0], bytes(buf[body + 4:body + 4 + incl]), orig)
            elif btype_i == 1:                 # interface description
                lt, _res, _snap = struct.unpack_from(endian + "HHI", buf, body)
                tick, tsoff = 1000, 0
                for code, val in _options(buf, body + 8, end, endian):
                    if code == 9 and val:
                        r = val[0]
                        tick = (10 ** 9 / 10 ** (r & 0x7F)) if not r & 0x80 else 10 ** 9 / (1 << (r & 0x7F))
                        if tick == int(tick):
                            tick = int(tick)
                    elif code == 14 and len(val) >= 8:
                        tsoff = struct.unpack_from(endian + "q", val)[0] * 1_000_000_000
                ifaces.append((lt, tick, tsoff))
                self.linktypes.add(lt)
                total_ifaces += 1
            elif btype_i == 0x0A0D0D0A:        # section header: comments
                for code, val in _options(buf, body + 16, end, endian):
                    if code == 1:
                        self.comments.append(val.decode("utf-8", "replace"))
        self.interfaces = total_ifaces
        self.count = engine.n - n0
        self._backwards += engine.backwards - b0
        self._finish()

    def _hand(self, engine: Engine, ts: int, lt: int, data: bytes, orig: int) -> None:
        """Give one record read here to the engine (a damaged time stamp is clamped)."""
        if not _TS_MIN <= ts <= _TS_MAX:
            ts = _TS_MIN if ts < _TS_MIN else _TS_MAX
            self._absurd += 1
        engine.frame(ts, lt, data, min(orig, 0xFFFF_FFFF))

    # --------------------------------------------------------------- netmon
    def _netmon(self) -> Iterator[Packet]:
        s = self._s
        if not s.need(40):
            self._fail(TruncatedError, "file header cut short", 0, 0)
            return
        buf = s.buf
        minor, major, media = buf[4], buf[5], struct.unpack_from("<H", buf, 6)[0]
        v1 = self.format == "netmon1"
        if major != (1 if v1 else 2):
            self._fail(FormatError, f"Network Monitor version {major}.{minor} not supported", 0, 4)
            return
        y, mo, _dow, d, h, mi, sec, ms = struct.unpack_from("<8H", buf, 8)
        try:
            start = datetime(y, mo, d, h, mi, sec, ms * 1000, tzinfo=timezone.utc)
            start_ns = int(start.timestamp()) * 1_000_000_000 + ms * 1_000_000
        except ValueError:
            start_ns = 0
            self.warnings.append("capture start time in the header is invalid")
        ft_off, ft_len = struct.unpack_from("<II", buf, 24)
        self.interfaces = 1
        # The frame table sits at the end; Network Monitor files are read with
        # random access, so this format needs a seekable file (gzip streams are).
        f = s.f
        try:
            f.seek(ft_off)
            table = f.read(ft_len)
        except OSError as exc:
            self._fail(FormatError, f"frame table unreadable: {exc}", 0, ft_off)
            return
        if len(table) < ft_len or ft_len % 4:
            self._fail(TruncatedError, f"frame table cut short ({len(table)} of {ft_len} bytes)",
                       0, ft_off)
            table = table[: len(table) // 4 * 4]
        offsets = struct.unpack(f"<{len(table) // 4}I", table)
        # record trailers: 2.1 network type (2 bytes); 2.2 + process-info index (4);
        # 2.3 and later + UTC time stamp (FILETIME, 8) + time-zone index (1): 15 bytes
        trailer = 0 if v1 or minor == 0 else (2 if minor == 1 else (6 if minor == 2 else 15))
        default_lt = _NETMON_MEDIA.get(media, -1)
        n = 0
        prev_ts = _TS_MIN
        # 1.x frame header: ms since the start (4), wire length (2), captured length (2);
        # 2.x: microseconds since the start (8), wire length (4), captured length (4)
        hlen = 8 if v1 else 16
        for off in offsets:
            f.seek(off)
            hdr = f.read(hlen)
            if len(hdr) < hlen:
                self._fail(TruncatedError, "frame header cut short", n + 1, off)
                break
            if v1:
                delta_ms, orig, incl = struct.unpack("<IHH", hdr)
                delta_us = delta_ms * 1000
            else:
                delta_us, orig, incl = struct.unpack("<QII", hdr)
            if incl > MAX_RECORD:
                self._fail(FormatError, f"record length {incl} exceeds the maximum {MAX_RECORD}",
                           n + 1, off)
                break
            data = f.read(incl + trailer)
            if len(data) < incl + trailer:
                self._fail(TruncatedError, f"frame data cut short ({len(data)} of {incl + trailer} bytes)",
                           n + 1, off)
                break
            lt = default_lt
            ts = start_ns + delta_us * 1000
            if trailer:
                net = struct.unpack_from("<H", data, incl)[0]
                if net >= _NETMON_PCAP_BASE and net < 0xFFE0:
                    lt = net - _NETMON_PCAP_BASE
                elif net >= 0xFFE0:
                    lt = -net        # Network Monitor internal record (not a packet)
                else:
                    lt = _NETMON_MEDIA.get(net, -1000 - net)
                if trailer == 15:
                    ft = struct.unpack_from("<Q", data, incl + 6)[0]
                    if ft:
                        ts = ft * 100 - _EPOCH_1601_NS
            n += 1
            self.linktypes.add(lt)
            if ts < prev_ts:
                self._backwards += 1
            prev_ts = ts
            yield n, ts, lt, data[:incl], orig
        self.count = n
        self._finish()

    def _finish(self) -> None:
        if self._absurd:
            self.warnings.append(f"{self._absurd} record(s) with a time stamp outside the years "
                                 "1678-2262 (read as the nearest limit)")
        if self._backwards:
            self.warnings.append(f"time goes backwards at {self._backwards} record(s)")


def _grouped(records: Iterator[Packet], size: int = 4096) -> Iterator[list[Packet]]:
    """Group a record iterator into lists of at most ``size``."""
    out: list[Packet] = []
    try:
        for rec in records:
            out.append(rec)
            if len(out) >= size:
                yield out
                out = []
    except _STREAM_ERRORS:
        if out:          # the good records read before the damage still count
            yield out
        raise
    if out:
        yield out


def _options(buf: bytes, off: int, end: int, endian: str) -> Iterator[tuple[int, bytes]]:
    """Walk pcapng options between ``off`` and ``end``."""
    while off + 4 <= end:
        code, length = struct.unpack_from(endian + "HH", buf, off)
        if code == 0:
            return
        val = buf[off + 4:off + 4 + length]
        yield code, val
        off += 4 + ((length + 3) & ~3)


class _Prefixed(io.RawIOBase):
    """A file object that first returns ``prefix`` then the rest of ``f``."""

    def __init__(self, prefix: bytes, f: BinaryIO):
        self.prefix = prefix
        self.f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        if self.prefix:
            k = min(len(b), len(self.prefix))
            b[:k] = self.prefix[:k]
            self.prefix = self.prefix[k:]
            return k
        data = self.f.read(len(b))
        b[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.f.close()
        super().close()
