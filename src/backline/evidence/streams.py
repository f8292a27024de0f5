"""Bounded streaming: decompress and copy without trusting any header.

:class:`CountingReader` counts the compressed bytes actually consumed;
:class:`GuardedReader` wraps the decompressed side and stops with
:class:`~backline.errors.UnsafeArchiveEntry` as soon as the expansion ratio
passes the limit.  :class:`Budget` holds the intake-wide totals and
:func:`copy_bounded` writes one file, hashing as it goes.

>>> import io, gzip
>>> raw = CountingReader(io.BytesIO(gzip.compress(b"a" * 100)))
>>> r = GuardedReader(open_decompressor(raw, "gzip"), raw, max_ratio=1000, grace=0, label="x")
>>> len(r.read(1000)), raw.count > 0
(100, True)
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import zstandard

from backline.errors import UnsafeArchiveEntry
from backline.evidence.limits import IntakeLimits

CHUNK = 1 << 20

#: Exceptions a decompressor or archive reader may raise on damaged input.
STREAM_ERRORS: tuple[type[BaseException], ...] = (
    OSError, EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError, ValueError,
    gzip.BadGzipFile, zipfile.BadZipFile, tarfile.TarError,
)


class CountingReader(io.RawIOBase):
    """Read-through wrapper that counts bytes read from ``inner``."""

    def __init__(self, inner: BinaryIO):
        self.inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.inner.read(len(b))
        n = len(data)
        b[:n] = data
        self.count += n
        return n

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.count += len(data)
        return data


def open_decompressor(raw: BinaryIO, compression: str) -> "StreamDecompressor":
    """A streaming reader of the decompressed bytes of ``raw`` (see :class:`StreamDecompressor`)."""
    return StreamDecompressor(raw, compression)


class StreamDecompressor(io.RawIOBase):
    """Incremental decompression of every member/frame of ``raw``.

    Unlike ``gzip.GzipFile`` and friends, the bytes decompressed before a
    stream ends early are kept, and ``truncated`` says that it did.  Output
    per step is bounded (zstd input is fed in small pieces, as its
    decompressor has no output limit), so a bomb cannot fill memory.

    >>> import io, gzip
    >>> d = StreamDecompressor(io.BytesIO(gzip.compress(b"x" * 5000)[:-12]), "gzip")
    >>> len(d.read(10_000)) > 0, d.read(10), d.truncated
    (True, b'', True)
    """

    FEED = 64 * 1024
    ZSTD_FEED = 512

    def __init__(self, raw: BinaryIO, compression: str):
        if compression not in ("gzip", "bzip2", "xz", "zstd"):
            raise ValueError(f"unknown compression {compression!r}")
        self.raw = raw
        self.kind = compression
        self.dec = self._new()
        self.fed = False            # the current decoder has been given input
        self.pending = b""          # input read but not yet given to the decoder
        self.out = bytearray()
        self.truncated = False
        self.done = False

    def _new(self):
        if self.kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        if self.kind == "bzip2":
            return bz2.BZ2Decompressor()
        if self.kind == "xz":
            return lzma.LZMADecompressor()
        return zstandard.ZstdDecompressor().decompressobj()

    def readable(self) -> bool:
        return True

    def _next_member(self, rest: bytes) -> None:
        # Another member/frame follows, unless only zero padding is left.
        if rest.strip(b"\x00"):
            self.dec = self._new()
            self.fed = False
            self.pending = rest + self.pending
        else:
            self.pending = b""

    def _step(self, want: int) -> None:
        dec = self.dec
        if self.kind in ("bzip2", "xz") and self.fed and not dec.eof and not dec.needs_input:
            self.out += dec.decompress(b"", max_length=want)
            return
        if self.kind == "gzip" and self.fed and dec.unconsumed_tail:
            tail = dec.unconsumed_tail
            self.out += dec.decompress(tail, want)
            if dec.eof:
                self._next_member(dec.unused_data)
            return
        if not self.pending:
            self.pending = self.raw.read(self.FEED)
            if not self.pending:
                if self.fed and not dec.eof:
                    self.truncated = True
                self.done = True
                return
        if self.kind == "zstd":
            data, self.pending = self.pending[: self.ZSTD_FEED], self.pending[self.ZSTD_FEED:]
        else:
            data, self.pending = self.pending, b""
        self.fed = True
        if self.kind == "gzip":
            self.out += dec.decompress(data, want)
        elif self.kind == "zstd":
            self.out += dec.decompress(data)
        else:
            self.out += dec.decompress(data, max_length=want)
        if dec.eof:
            self._next_member(dec.unused_data)

    def read(self, size: int = -1) -> bytes:
        want = CHUNK if size is None or size < 0 else size
        while len(self.out) < want and not self.done:
            self._step(want - len(self.out))
        data = bytes(self.out[:want])
        del self.out[:want]
        return data

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


HEAD_SNIFF = 20


def is_memory_image(head: bytes) -> bool:
    r"""Whether ``head`` (the first 20 bytes of a file) starts a memory image: an ELF core
    (``e_type`` 4 in either byte order), a minidump (``MDMP``), a Windows kernel dump
    (``PAGEDUMP``/``PAGEDU64``) or a Java heap dump (``JAVA PROFILE``).

    >>> is_memory_image(b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x04\x00\x3e\x00")
    True
    >>> is_memory_image(b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x02\x00\x3e\x00")   # an executable
    False
    >>> is_memory_image(b"MDMP\x93\xa7" + bytes(14))
    True
    """
    if head[:4] == b"\x7fELF" and len(head) >= 18:
        e_type = head[16:18]
        return e_type == (b"\x04\x00" if head[5] == 1 else b"\x00\x04")
    return head[:4] == b"MDMP" or head[:8] in (b"PAGEDUMP", b"PAGEDU64") or head[:12] == b"JAVA PROFILE"


class GuardedReader(io.RawIOBase):
    """Decompressed-side reader that enforces the expansion ratio while streaming.

    ``consumed`` is either a :class:`CountingReader` (or any object with a
    ``count`` of compressed bytes really read) or a fixed number (a zip entry's compressed size,
    capped by the archive size).

    A stream that starts with a memory image (:func:`is_memory_image`) is held to
    ``memory_image_ratio`` instead (cores of small processes are mostly zero pages).
    """

    def __init__(self, inner: BinaryIO, consumed: CountingReader | int, *, max_ratio: float,
                 grace: int, label: str, memory_image_ratio: float | None = None):
        self.inner = inner
        self.consumed = consumed
        self.max_ratio = max_ratio
        self.grace = grace
        self.label = label
        self.out = 0
        self.memory_image_ratio = memory_image_ratio
        self.head = b""

    def readable(self) -> bool:
        return True

    def _check(self) -> None:
        if self.out <= self.grace:
            return
        src = self.consumed if isinstance(self.consumed, int) else self.consumed.count
        ratio = self.out / max(src, 1)
        if ratio > self.max_ratio:
            raise UnsafeArchiveEntry(
                f"compression ratio above {self.max_ratio:g}:1 ({self.out} bytes out of {src}): "
                "refused as a decompression bomb", artifact=self.label)

    @property
    def truncated(self) -> bool:
        """True when the underlying compressed stream ended early."""
        return bool(getattr(self.inner, "truncated", False))

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(CHUNK if size is None or size < 0 else size)
        if self.memory_image_ratio is not None and data:
            self.head += data[:HEAD_SNIFF - len(self.head)]
            if len(self.head) >= HEAD_SNIFF:
                if is_memory_image(self.head):
                    self.max_ratio = max(self.max_ratio, self.memory_image_ratio)
                self.memory_image_ratio = None
        self.out += len(data)
        self._check()
        return data

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        n = len(data)
        b[:n] = data
        return n


@dataclass(slots=True)
class Budget:
    """Intake-wide counters checked against :class:`IntakeLimits`."""

    limits: IntakeLimits
    written: int = 0
    entries: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Copied:
    """Result of :func:`copy_bounded`: bytes written, their sha256, and a
    problem when the source stopped early (the partial bytes are kept)."""

    size: int
    sha256: str
    problem: str = ""


def copy_bounded(src: BinaryIO, dest: Path, budget: Budget, label: str) -> Copied:
    """Copy ``src`` to a new file ``dest`` within the file and total limits.

    Raises :class:`UnsafeArchiveEntry` (and removes ``dest``) when a limit or
    the ratio guard trips; a damaged stream keeps what was read and reports
    it in ``Copied.problem``.
    """
    limits = budget.limits
    digest = hashlib.sha256()
    size = 0
    problem = ""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(dest, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                try:
                    chunk = src.read(CHUNK)
                except UnsafeArchiveEntry:
                    raise
                except STREAM_ERRORS as exc:
                    problem = f"truncated or corrupt after {size} bytes: {exc}"
                    break
                if not chunk:
                    break
                size += len(chunk)
                if size > limits.max_file_bytes:
                    raise UnsafeArchiveEntry(
                        f"expands beyond the single-file limit of {limits.max_file_bytes} bytes",
                        artifact=label)
                if budget.written + len(chunk) > limits.max_total_bytes:
                    raise UnsafeArchiveEntry(
                        f"intake would exceed the total limit of {limits.max_total_bytes} bytes",
                        artifact=label)
                budget.written += len(chunk)
                digest.update(chunk)
                out.write(chunk)
        if not problem and getattr(src, "truncated", False):
            problem = (getattr(src, "truncated_reason", "")
                       or f"truncated: the compressed stream ends early (after {size} bytes of content)")
    except BaseException:
        # Bytes already counted stay counted: a refused bomb still spends budget.
        os.unlink(dest)
        raise
    return Copied(size, digest.hexdigest(), problem)
