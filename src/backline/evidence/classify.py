"""Classify one file: content (magic bytes) first, name second.

Only the head of the file is read (``IntakeLimits.head_bytes``, 64 KB by
default), so classification is cheap whatever the file size.  Compressed
files (gzip, bzip2, xz, zstd) are classified by what their first
decompressed bytes hold, with ``compression`` saying how they came.

>>> import pathlib, tempfile
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
>>> _ = p.write_bytes(b"MDMP\\x93\\xa7\\x00\\x00" + bytes(8) + b"\\x20" + bytes(15))
>>> c = classify_file(p)
>>> c.kind.value, c.format
('minidump', 'minidump')
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import zstandard

from backline.evidence.magic import sniff_archive, sniff_binary, sniff_compression
from backline.evidence.textkind import classify_text, decode_head, kind_from_name
from backline.model.core import ArtifactKind

HEAD_BYTES = 64 * 1024
#: Container formats intake expands (7z, RAR and CAB through libarchive).
EXPANDED_ARCHIVES = ("zip", "tar", "7z", "rar", "cab")

_TEXT_KINDS = {ArtifactKind.TEXT_LOG, ArtifactKind.CRASH_TRACE, ArtifactKind.HS_ERR,
               ArtifactKind.CONFIG, ArtifactKind.DATA, ArtifactKind.DOCUMENT,
               ArtifactKind.SOURCE, ArtifactKind.SYMBOLS}
#: Kinds whose files are always text (a binary file named like one is mislabelled).
_TEXT_ONLY_KINDS = {ArtifactKind.TEXT_LOG, ArtifactKind.CRASH_TRACE, ArtifactKind.HS_ERR,
                    ArtifactKind.CONFIG, ArtifactKind.SOURCE, ArtifactKind.SYMBOLS}


@dataclass(frozen=True, slots=True)
class Classification:
    """The answer of :func:`classify_file`.

    ``format`` is the detail inside the kind (``pcapng``, ``pe32+``, ``java``);
    for text logs it is the text encoding (``utf-8``, ``utf-16le``).
    ``encoding`` is set for every text file, ``compression`` when the bytes
    came through a single-stream compressor (the kind is then the kind of the
    decompressed content).  ``meta`` holds small extras (ELF type, newline).
    """

    kind: ArtifactKind
    format: str
    problems: tuple[str, ...] = ()
    encoding: str = ""
    compression: str = ""
    meta: tuple[tuple[str, object], ...] = ()

    @property
    def is_archive(self) -> bool:
        """True for a container that intake expands (zip, tar, compressed tar, 7z, RAR, CAB)."""
        return self.kind is ArtifactKind.ARCHIVE and self.format.split("+")[0] in EXPANDED_ARCHIVES


def decompress_head(head: bytes, compression: str, limit: int = HEAD_BYTES) -> bytes:
    """Decompress at most ``limit`` bytes from the start of a compressed stream.

    Raises ``ValueError`` (with the codec's message) on a corrupt stream.
    """
    try:
        if compression == "gzip":
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            return d.decompress(head, limit)
        if compression == "bzip2":
            out = bytearray()
            dec = bz2.BZ2Decompressor()
            out += dec.decompress(head, max_length=limit)
            return bytes(out)
        if compression == "xz":
            dec = lzma.LZMADecompressor()
            return dec.decompress(head, max_length=limit)
        if compression == "zstd":
            dobj = zstandard.ZstdDecompressor().decompressobj()
            return dobj.decompress(head)[:limit]
    except (OSError, EOFError, zlib.error, lzma.LZMAError, zstandard.ZstdError) as exc:
        raise ValueError(f"corrupt {compression} stream: {exc}") from None
    raise ValueError(f"unknown compression {compression!r}")


_COMPRESSED_SUFFIX = {".tgz": ".tar", ".tbz2": ".tar", ".tbz": ".tar", ".txz": ".tar", ".tzst": ".tar",
                      ".gz": "", ".gzip": "", ".bz2": "", ".xz": "", ".zst": "", ".zstd": ""}


def strip_compression_suffix(name: str) -> str:
    """``a.pcap.gz`` -> ``a.pcap``; ``a.tgz`` -> ``a.tar``; other names unchanged."""
    low = name.lower()
    for suf, repl in _COMPRESSED_SUFFIX.items():
        if low.endswith(suf):
            return name[: -len(suf)] + repl
    return name


#: Names that promise a crash dump, and the kinds that keep the promise.
_DUMP_NAME = re.compile(r"(\.(dmp|mdmp|core)$|(^|/)core(\.\d+)?$)", re.I)
_DUMP_KINDS = {ArtifactKind.MINIDUMP, ArtifactKind.ELF_CORE, ArtifactKind.CRASH_TRACE,
               ArtifactKind.HS_ERR}


def classify_head(head: bytes, name: str, size: int, *, _depth: int = 0) -> Classification:
    """Classify from the first bytes of a file, its name and its total size.

    A file named like a crash dump whose content is not one gets a problem saying so:

    >>> classify_head(b"MDM", "crash.dmp", 3).problems
    ('named like a crash dump but the content is not a minidump, core or crash trace (document)',)
    """
    c = _classify_head(head, name, size, _depth=_depth)
    if (_depth == 0 and size and c.kind not in _DUMP_KINDS and c.kind is not ArtifactKind.ARCHIVE
            and _DUMP_NAME.search(strip_compression_suffix(name))):
        why = f"named like a crash dump but the content is not a minidump, core or crash trace ({c.kind.value})"
        c = Classification(c.kind, c.format, (*c.problems, why), c.encoding, c.compression, c.meta)
    return c


def _classify_head(head: bytes, name: str, size: int, *, _depth: int = 0) -> Classification:
    if size == 0:
        by_name = kind_from_name(name)
        kind = by_name.kind if by_name else ArtifactKind.UNKNOWN
        return Classification(kind, by_name.format if by_name else "", ("zero-byte file",))

    comp = sniff_compression(head)
    if comp and _depth == 0:
        inner_name = strip_compression_suffix(name)
        try:
            inner = decompress_head(head, comp)
        except ValueError as exc:
            return Classification(ArtifactKind.ARCHIVE, comp, (str(exc),), compression=comp)
        if not inner:
            # e.g. a bzip2 block larger than the head: the content is only known once
            # the stream is decompressed (intake does that and classifies the result).
            return Classification(ArtifactKind.ARCHIVE, comp, compression=comp,
                                  meta=(("content", "not visible in the part read"),))
        c = _classify_head(inner, inner_name, max(size, len(inner)), _depth=1)
        fmt = c.format
        if c.kind is ArtifactKind.ARCHIVE and c.format == "tar":
            fmt = f"tar+{comp}"
        return Classification(c.kind, fmt, c.problems, c.encoding, comp, c.meta)

    sniff = sniff_binary(head, size, name)
    if sniff is not None:
        return Classification(sniff.kind, sniff.format, sniff.problems, meta=sniff.meta)
    arch = sniff_archive(head)
    if arch:
        base = name.rsplit("/", 1)[-1].lower()
        if arch == "zip" and base.endswith((".jar", ".war", ".ear", ".apk", ".aar")):
            return Classification(ArtifactKind.EXECUTABLE, "jar")
        if arch == "zip" and base.endswith((".docx", ".xlsx", ".pptx", ".odt", ".ods", ".odp")):
            return Classification(ArtifactKind.DOCUMENT, "office")
        return Classification(ArtifactKind.ARCHIVE, arch)

    decoded = decode_head(head, truncated=size > len(head))
    if decoded is None:
        by_name = kind_from_name(name)
        if by_name and by_name.kind not in _TEXT_KINDS:
            return Classification(by_name.kind, by_name.format)
        if by_name and by_name.kind in _TEXT_ONLY_KINDS:   # named like a log, but not text: say so
            return Classification(ArtifactKind.UNKNOWN, "binary", (
                f"binary content although the name suggests {by_name.kind.value}: not read as text",))
        return Classification(ArtifactKind.UNKNOWN, "binary")
    text, encoding = decoded
    if not text.strip():
        return Classification(ArtifactKind.UNKNOWN, "text", ("only whitespace in the part read",),
                              encoding=encoding)
    verdict = classify_text(text, name)
    fmt = verdict.format or encoding
    problems: tuple[str, ...] = ()
    if "\ufffd" in text[:65536] and encoding.startswith("utf"):
        problems = ("text has bytes that are not valid " + encoding,)
    if b"\x00" in head and not encoding.startswith("utf-16"):
        problems = (*problems, "NUL bytes in the text (a zero-filled range, or another encoding mixed in)")
    newline = "crlf" if "\r\n" in text[:65536] else "lf"
    return Classification(verdict.kind, fmt, problems, encoding, meta=(("newline", newline),))


def read_head(path: Path, limit: int = HEAD_BYTES) -> tuple[bytes, int]:
    """The first ``limit`` bytes of ``path`` and its size (OSError propagates)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        return f.read(limit), size


def classify_file(path: Path, name: str | None = None, *, head_bytes: int = HEAD_BYTES) -> Classification:
    """Classify the file at ``path``; ``name`` (the display name) defaults to the file name.

    Never raises for bad content; an unreadable file gives kind UNKNOWN with
    the reason in ``problems``.
    """
    display = name if name is not None else Path(path).name
    try:
        head, size = read_head(Path(path), head_bytes)
        if starts_zero_filled(head, size):
            return classify_zero_filled(Path(path), display, size, head_bytes)
    except OSError as exc:
        return Classification(ArtifactKind.UNKNOWN, "", (f"unreadable: {exc.strerror or exc}",))
    return classify_head(head, display, size)


def starts_zero_filled(head: bytes, size: int) -> bool:
    """True when the whole head is zero bytes and the file goes on after it."""
    return bool(head) and size > len(head) and not head.strip(b"\x00")


#: How far past a leading run of zero bytes classification looks for content.
MAX_ZERO_SCAN = 256 << 20


def classify_zero_filled(path: Path, display: str, size: int, head_bytes: int) -> Classification:
    """A file whose head is all zero bytes (a log after copytruncate rotation, a preallocated
    file): classify the first bytes after the zero run, and say where it ends."""
    with open(path, "rb") as f:
        start = 0
        try:   # sparse files: jump straight to the first data
            start = os.lseek(f.fileno(), 0, getattr(os, "SEEK_DATA", 3))
        except OSError:
            start = 0
        f.seek(start)
        while start < min(size, MAX_ZERO_SCAN):
            chunk = f.read(1 << 20)
            if not chunk:
                break
            rest = chunk.lstrip(b"\x00")
            if rest:
                start += len(chunk) - len(rest)
                f.seek(start)
                c = classify_head(f.read(head_bytes), display, size)
                why = f"starts with {start} zero bytes (zero-filled, e.g. by copytruncate rotation)"
                return Classification(c.kind, c.format, (why, *c.problems), c.encoding, c.compression, c.meta)
            start += len(chunk)
    return Classification(ArtifactKind.UNKNOWN, "zeros", (
        f"only zero bytes in the first {min(size, MAX_ZERO_SCAN)} bytes",))
