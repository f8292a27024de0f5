"""Reading text logs: decompression, encoding, line splitting, junk counting.

:func:`open_log` opens any text log (plain, ``.gz``, ``.bz2``, ``.xz``,
``.zst``, recognised by magic bytes, not by name), decides the encoding
(UTF-8, UTF-16 with BOM, Latin-1 fallback) and yields :class:`Line` objects
with 1-based line numbers.  Lines longer than ``max_line`` bytes are cut (the
rest of the physical line is skipped in bounded memory and counted); lines
that are mostly binary are skipped and counted.  Memory use is bounded by
``max_line`` whatever the file.

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "a.log")
>>> _ = open(p, "wb").write(b"one\\r\\ntwo\\n\\x00\\x01\\x02\\x03\\x04\\x05\\nthree")
>>> src = open_log(p)
>>> [(l.number, l.text) for l in src]
[(1, 'one'), (2, 'two'), (4, 'three')]
>>> src.stats.binary_lines, src.stats.encoding
(1, 'utf-8')
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from backline.errors import FormatError

#: Longest line kept, in bytes; the rest of a longer physical line is skipped.
MAX_LINE = 64 * 1024

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


@dataclass(frozen=True, slots=True)
class Line:
    """One logical text line of a log (line terminator removed)."""

    number: int
    text: str


@dataclass(slots=True)
class ReadStats:
    """What the reader saw: counts a person should know about."""

    encoding: str = "utf-8"
    compression: str = ""
    lines: int = 0
    bytes_read: int = 0
    binary_lines: int = 0
    long_lines: int = 0
    decode_errors: int = 0
    crlf_lines: int = 0
    cr_only: bool = False           # old-Mac line ends: lines split on CR
    nul_bytes: int = 0              # zero-filled runs skipped at line starts (copytruncate)
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)


def sniff_compression(head: bytes) -> str:
    """Name the compression of a file from its first bytes ('' when none)."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return ""


def _open_binary(path: Path, compression: str) -> BinaryIO:
    if compression == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if compression == "bzip2":
        return bz2.open(path, "rb")  # type: ignore[return-value]
    if compression == "xz":
        return lzma.open(path, "rb")  # type: ignore[return-value]
    if compression == "zstd":
        import zstandard

        raw = open(path, "rb")
        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[return-value]
    return open(path, "rb")


#: Every byte that is not a control byte (tab, LF, CR, FF, ESC count as text).
_NOT_CTRL = bytes(b for b in range(256) if b >= 32 or b in (9, 10, 13, 12, 27))


def _is_binary(raw: bytes) -> bool:
    """A line is binary junk when it holds NULs (outside UTF-16) or many control bytes."""
    if not raw:
        return False
    if b"\x00" in raw:
        return True
    head = raw[:512]
    ctrl = len(head.translate(None, _NOT_CTRL))
    return ctrl * 10 > len(head)


class LogSource:
    """An opened log: iterate it for :class:`Line` objects; ``stats`` fills as it goes.

    Iterating twice re-reads the file from the start.
    """

    def __init__(self, path: str | Path, *, display: str | None = None, max_line: int = MAX_LINE,
                 byte_range: tuple[int, int] | None = None):
        self.path = Path(path)
        #: ``(start, end)``: read only these bytes of an uncompressed file (a byte range
        #: cut at line starts, :mod:`.ranges`); ``None``: the whole file
        self.byte_range = byte_range
        self.display = display or str(path)
        self.max_line = max_line
        self.stats = ReadStats()
        self.format_name = ""          # set by records.read_records once learned
        self.collected = None          # when the evidence was collected, if known beyond the file's mtime
        try:
            with open(self.path, "rb") as fh:
                head = fh.read(8)
        except OSError as exc:
            raise FormatError(f"cannot read: {exc.strerror or exc}", artifact=self.display) from exc
        self.stats.compression = sniff_compression(head)
        self._encoding = self._sniff_encoding()
        self.stats.encoding = self._encoding

    def _sniff_encoding(self) -> str:
        try:
            with _open_binary(self.path, self.stats.compression) as fh:
                sample = fh.read(64 * 1024)
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise FormatError(f"cannot decompress ({self.stats.compression}): {exc}",
                              artifact=self.display, locator="offset:0") from exc
        except Exception as exc:  # zstandard raises its own error type
            raise FormatError(f"cannot decompress ({self.stats.compression}): {exc}",
                              artifact=self.display, locator="offset:0") from exc
        # CR-only line ends (old Mac): CRs and not one LF in the sample
        body = sample.lstrip(b"\x00")
        self.stats.cr_only = b"\r" in body and b"\n" not in body
        if sample.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if sample.startswith(codecs.BOM_UTF16_LE):
            return "utf-16-le"
        if sample.startswith(codecs.BOM_UTF16_BE):
            return "utf-16-be"
        # UTF-16 without BOM: every other byte NUL in mostly-ASCII text.
        if len(sample) >= 64:
            odd_nul = sample[1::2].count(0) / max(1, len(sample) // 2)
            even_nul = sample[0::2].count(0) / max(1, len(sample) // 2)
            if odd_nul > 0.4 and even_nul < 0.05:
                return "utf-16-le"
            if even_nul > 0.4 and odd_nul < 0.05:
                return "utf-16-be"
        try:
            sample.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError as exc:
            # A cut multi-byte sequence at the end of the sample is not evidence.
            if exc.start >= len(sample) - 4:
                return "utf-8"
            return "utf-8-mixed"

    def _raw_lines(self) -> Iterator[bytes]:
        """Blocks of complete physical lines (``\n``-separated, no final terminator).

        Read in 1 MiB chunks; a line longer than ``max_line`` is cut there and
        the rest of it skipped, so memory stays bounded whatever the file.
        """
        st = self.stats
        limit = self.max_line
        cr_only = st.cr_only
        with _open_binary(self.path, st.compression) as fh:
            if self._encoding.startswith("utf-16"):
                for line in self._utf16_lines(fh):
                    yield line
                return
            # one buffer of pending bytes and one read buffer, reused: a fresh megabyte per
            # read costs page faults (about a tenth of the whole per-line path)
            buf = bytearray()
            skipping = False
            # compressed streams: read1 hands over what is decompressed so far, so a
            # truncated file still yields the lines before the damage
            read = fh.read if not st.compression else getattr(fh, "read1", fh.read)
            readinto = getattr(fh, "readinto", None) if not st.compression else None
            chunk = bytearray(1 << 20)
            view = memoryview(chunk)
            left = -1
            if self.byte_range is not None:
                fh.seek(self.byte_range[0])
                left = self.byte_range[1] - self.byte_range[0]
            while True:
                want = min(1 << 20, left) if left >= 0 else 1 << 20
                if readinto is not None:
                    got = readinto(view[:want]) if want else 0
                    data = view[:got]
                else:
                    data = read(want) if want else b""
                    got = len(data)
                if left >= 0:
                    left -= got
                if not got:
                    if buf and not skipping:
                        yield bytes(buf)
                    return
                st.bytes_read += got
                if cr_only:
                    data = bytes(data).replace(b"\r", b"\n")      # the file holds no LF: lossless
                if skipping:
                    i = data.find(b"\n") if isinstance(data, bytes) else chunk.find(b"\n", 0, got)
                    if i < 0:
                        continue
                    data = data[i + 1:]
                    skipping = False
                buf += data
                if buf[:1] == b"\x00":
                    # a zero-filled run at a line start (copytruncate rotation): skipped
                    # as it streams in, so a long run never swallows the next record
                    kept = buf.lstrip(b"\x00")
                    st.nul_bytes += len(buf) - len(kept)
                    buf = kept
                j = buf.rfind(b"\n")
                if j >= 0:
                    with memoryview(buf) as mv:
                        out = bytes(mv[:j])
                    del buf[:j + 1]
                    yield out
                if len(buf) > limit:
                    st.long_lines += 1
                    with memoryview(buf) as mv:
                        out = bytes(mv[:limit])
                    buf = bytearray()
                    skipping = True
                    yield out

    def _safe_raw_lines(self) -> Iterator[bytes]:
        """:meth:`_raw_lines`, stopping with a warning on corrupt compressed data."""
        it = self._raw_lines()
        while True:
            try:
                raw = next(it)
            except StopIteration:
                return
            except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
                self.stats.truncated = True
                self._warn(f"compressed data corrupt or truncated after line {self.stats.lines}: {exc}")
                return
            except Exception as exc:  # zstandard.ZstdError
                if type(exc).__name__ != "ZstdError":
                    raise
                self.stats.truncated = True
                self._warn(f"compressed data corrupt or truncated after line {self.stats.lines}: {exc}")
                return
            yield raw

    def _utf16_lines(self, fh: BinaryIO) -> Iterator[bytes]:
        """UTF-16 is decoded incrementally and re-encoded as UTF-8 lines."""
        st = self.stats
        dec = codecs.getincrementaldecoder(self._encoding)(errors="replace")
        buf = ""
        first = True
        while True:
            chunk = fh.read(1 << 20)
            st.bytes_read += len(chunk)
            text = dec.decode(chunk, final=not chunk)
            if first and text.startswith("\ufeff"):
                text = text[1:]
            first = False
            if self.stats.cr_only:
                text = text.replace("\r", "\n")
            buf += text
            parts = buf.split("\n")
            buf = parts.pop()
            if len(buf) > self.max_line:
                st.long_lines += 1
                parts.append(buf[: self.max_line])
                buf = ""
            for p in parts:
                yield p[: self.max_line].encode("utf-8")
            if not chunk:
                if buf:
                    yield buf.encode("utf-8")
                return

    def __iter__(self) -> Iterator[Line]:
        for n, text in self.numbered():
            yield Line(n, text)

    def numbered(self) -> Iterator[tuple[int, str]]:
        """The lines as ``(number, text)`` tuples: :meth:`__iter__` without a
        :class:`Line` object per line (the records reader's fast path)."""
        st = self.stats
        st.lines = st.binary_lines = st.long_lines = st.decode_errors = st.crlf_lines = st.nul_bytes = 0
        st.bytes_read = 0
        latin = self._encoding == "latin-1"
        limit = self.max_line
        n = 0
        for block in self._safe_raw_lines():
            raws = block.split(b"\n")
            # fast path: a block without control bytes that decodes as UTF-8
            if not latin and not block.translate(None, _NOT_CTRL):
                try:
                    text = block.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
                if text is not None:
                    texts = text.split("\n")
                    if len(texts) == len(raws) and "\r" not in text and max(map(len, raws)) <= limit:
                        # no CR, no over-long line: nothing to do per line
                        yield from zip(range(n + 1, n + 1 + len(texts)), texts)
                        n += len(texts)
                        st.lines = n
                        continue
                    if len(texts) == len(raws):
                        for t, r in zip(texts, raws):
                            n += 1
                            if len(r) > limit:
                                st.long_lines += 1
                                t = r[:limit].decode("utf-8", "replace")
                            if t.endswith("\r"):
                                t = t[:-1]
                                st.crlf_lines += 1
                            yield n, t
                        st.lines = n
                        continue
            for raw in raws:
                n += 1
                st.lines = n
                if raw[:1] == b"\x00":
                    kept = raw.lstrip(b"\x00")
                    st.nul_bytes += len(raw) - len(kept)
                    if not kept:
                        continue
                    raw = kept
                if len(raw) > limit:
                    st.long_lines += 1
                    raw = raw[:limit]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                    st.crlf_lines += 1
                if _is_binary(raw):
                    st.binary_lines += 1
                    continue
                if latin:
                    text = raw.decode("latin-1")
                else:
                    try:
                        text = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        # mixed encodings: this line is not UTF-8; Latin-1 never fails
                        st.decode_errors += 1
                        text = raw.decode("latin-1")
                yield n, text
        st.lines = n
        self._finish_warnings()

    def blocks(self) -> Iterator[bytes]:
        """The file as blocks of complete lines (``\n``-separated, no final terminator),
        decompressed, UTF-16 re-encoded as UTF-8, CR-only ends turned into LF: what the
        compiled per-line engine reads (:func:`.mine_file.feed_engine`)."""
        self.stats.bytes_read = self.stats.nul_bytes = self.stats.long_lines = 0
        yield from self._safe_raw_lines()

    def finish_engine(self, engine) -> None:
        """Fill :attr:`stats` and the warnings from a per-line engine's counts."""
        st = self.stats
        st.lines, st.binary_lines = engine.lines, engine.binary_lines
        st.long_lines += engine.long_lines      # lines cut while reading (past a chunk) and by the engine
        st.decode_errors, st.crlf_lines = engine.decode_errors, engine.crlf_lines
        st.nul_bytes += engine.nul_bytes
        self._finish_warnings()

    def _finish_warnings(self) -> None:
        st = self.stats
        n = st.lines
        if st.cr_only:
            self._warn("CR-only line ends (old Mac): lines split on CR")
        if st.nul_bytes:
            self._warn(f"{st.nul_bytes} NUL byte(s) skipped at line starts (zero-filled run, "
                       "e.g. copytruncate rotation)")
        if st.binary_lines:
            self._warn(f"{st.binary_lines} binary line(s) skipped")
        if st.long_lines:
            self._warn(f"{st.long_lines} line(s) longer than {self.max_line} bytes cut")
        if st.decode_errors:
            self._warn(f"{st.decode_errors} line(s) not UTF-8, read as Latin-1")
            st.encoding = "utf-8+latin-1" if st.decode_errors < n else "latin-1"

    def _warn(self, msg: str) -> None:
        if msg not in self.stats.warnings:
            self.stats.warnings.append(msg)


def open_log(path: str | Path, *, display: str | None = None, max_line: int = MAX_LINE,
             byte_range: tuple[int, int] | None = None) -> LogSource:
    """Open a text log for reading (see module docstring)."""
    return LogSource(path, display=display, max_line=max_line, byte_range=byte_range)
