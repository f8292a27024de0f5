"""Walk the members of zip and tar archives, checking every one before use.

Python's ``zipfile``/``tarfile`` do not protect against hostile archives, so
each member is checked here: its name (``..``, absolute, NUL), its type
(links, devices, FIFOs), encryption, duplicates, overlapping zip entries and
the declared entry count.  Nothing is extracted by these modules; callers
read accepted members through a ratio-guarded stream and write them where
they choose (see :mod:`backline.evidence.intake`).

Each member is yielded as :class:`Member` (accepted, with ``open()``) or
:class:`Refused` (with the reason).
"""

from __future__ import annotations

import io
import stat
import struct
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from backline.errors import ArchiveError
from backline.evidence.limits import IntakeLimits
from backline.evidence.names import check_member_name, render_name
from backline.evidence.streams import HEAD_SNIFF, CountingReader, GuardedReader, is_memory_image, open_decompressor


@dataclass(frozen=True, slots=True)
class Member:
    """An accepted regular-file member; ``open()`` gives a guarded reader."""

    name: str
    open: Callable[[], BinaryIO]
    notes: tuple[str, ...] = ()
    mtime: float | None = None          # the member's modification time (seconds, UTC) when known


@dataclass(frozen=True, slots=True)
class Refused:
    """A member that was not extracted, and why."""

    name: str
    reason: str


# ------------------------------------------------------------------ zip

#: Largest central directory read into memory (zipfile loads it whole).
MAX_CENTRAL_DIRECTORY = 32 << 20


def zip_central_directory_size(path: Path) -> int:
    """Size in bytes of the central directory as the end record states it (0 if unknown)."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        tail_len = min(size, 65557)
        f.seek(size - tail_len)
        tail = f.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(tail):
        return 0
    (cd_size,) = struct.unpack_from("<I", tail, pos + 12)
    return cd_size


def zip_declared_entries(path: Path) -> int | None:
    """Entry count from the end-of-central-directory record (zip64 aware), without
    loading the directory; ``None`` when no record is found."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        tail_len = min(size, 65557 + 20)
        f.seek(size - tail_len)
        tail = f.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or pos + 22 > len(tail):
        return None
    (entries,) = struct.unpack_from("<H", tail, pos + 10)
    if entries == 0xFFFF:
        loc = tail.rfind(b"PK\x06\x07", 0, pos)
        if loc >= 0:
            (z64_off,) = struct.unpack_from("<Q", tail, loc + 8)
            with open(path, "rb") as f:
                f.seek(z64_off)
                rec = f.read(56)
            if rec[:4] == b"PK\x06\x06" and len(rec) >= 40:
                (entries,) = struct.unpack_from("<Q", rec, 32)
    return entries


def _zip_name(info: zipfile.ZipInfo) -> tuple[str, bool]:
    """The member name, decoding legacy (non-UTF-8 flag) names as UTF-8 when they are."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            raw = info.orig_filename.encode("cp437")
        except UnicodeEncodeError:
            return name, False
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            # Neither UTF-8 nor marked: keep the bytes, shown escaped.
            return raw.decode("utf-8", "surrogateescape"), any(b >= 0x80 for b in raw)
    return name, False


def _zip_time(info: zipfile.ZipInfo) -> float | None:
    """A zip entry's DOS time (the packing machine's local time, read as UTC)."""
    import calendar

    try:
        return float(calendar.timegm((*info.date_time, 0, 0, 0)))
    except (ValueError, OverflowError, TypeError):
        return None


def iter_zip(path: Path, label: str, limits: IntakeLimits, remaining_entries: int) -> Iterator[Member | Refused]:
    """Members of the zip at ``path`` (``label`` is its display path)."""
    declared = zip_declared_entries(path)
    if declared is not None and declared > remaining_entries:
        raise ArchiveError(f"declares {declared} entries, more than the {remaining_entries} "
                           f"left under the limit of {limits.max_entries}: archive not expanded",
                           artifact=label)
    cd_size = zip_central_directory_size(path)
    if cd_size > MAX_CENTRAL_DIRECTORY:
        raise ArchiveError(f"central directory of {cd_size} bytes is larger than the "
                           f"{MAX_CENTRAL_DIRECTORY} bytes allowed: archive not expanded", artifact=label)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise ArchiveError(f"cannot open zip: {exc}", artifact=label) from None
    archive_size = path.stat().st_size
    infos = zf.infolist()
    if len(infos) > remaining_entries:      # the end record may have lied about the count
        zf.close()
        raise ArchiveError(f"central directory holds {len(infos)} entries, more than the "
                           f"{remaining_entries} left under the limit of {limits.max_entries}: "
                           "archive not expanded", artifact=label)
    # Overlapping entries (the "better zip bomb" construction) share compressed data.
    spans = sorted((i.header_offset, i.header_offset + 30 + len(i.orig_filename.encode("cp437", "replace"))
                    + i.compress_size, idx) for idx, i in enumerate(infos))
    overlapping: set[int] = set()
    prev_end = -1
    for start, end, idx in spans:
        if start < prev_end:
            overlapping.add(idx)
        prev_end = max(prev_end, end)
    seen: set[str] = set()
    try:
        for idx, info in enumerate(infos):
            raw_name, bad_name = _zip_name(info)
            shown = render_name(raw_name)[0]
            if info.filename.endswith("/"):         # a folder (ZipInfo.is_dir fails on an empty name)
                continue
            name, reason = check_member_name(raw_name)
            if reason:
                yield Refused(shown, reason)
                continue
            mode = info.external_attr >> 16
            if info.create_system == 3 and mode:
                if stat.S_ISLNK(mode):
                    yield Refused(shown, "symbolic link entry: links are not followed")
                    continue
                if stat.S_IFMT(mode) and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
                    yield Refused(shown, "device, FIFO or socket entry: not extracted")
                    continue
            if info.flag_bits & 0x1:
                yield Refused(shown, "encrypted entry (password protected): cannot be read")
                continue
            if idx in overlapping:
                yield Refused(shown, "entry overlaps another entry's data (zip bomb construction)")
                continue
            if name in seen:
                yield Refused(shown, "duplicate name in the archive: the first entry was kept")
                continue
            seen.add(name)
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED,
                                          zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
                yield Refused(shown, f"unsupported zip compression method {info.compress_type}")
                continue
            consumed = max(1, min(info.compress_size, archive_size))

            def opener(info=info, consumed=consumed, shown=shown) -> BinaryIO:
                return GuardedReader(zf.open(info), consumed, max_ratio=limits.max_ratio,  # type: ignore[arg-type]
                                     grace=limits.ratio_grace_bytes, label=f"{label}!/{shown}",
                                     memory_image_ratio=limits.max_ratio_memory_image)

            notes = ("name is not valid UTF-8 or holds control characters (shown with \\x escapes)",) if bad_name else ()
            yield Member(name, opener, notes, _zip_time(info))
    finally:
        zf.close()


# ------------------------------------------------------------------ tar

class _TarMemberReader(io.RawIOBase):
    """The bytes of one regular member of a streamed tar, read in bounded pieces.

    When the archive ends inside the member, the bytes before the cut are
    returned and ``truncated`` is set (``truncated_reason`` says how far it got).

    >>> r = _TarMemberReader(io.BytesIO(b"abc"), 10)
    >>> r.read(100), r.read(100), r.truncated
    (b'abc', b'', True)
    """

    PIECE = 64 * 1024

    def __init__(self, stream, size: int, guard: GuardedReader | None = None,
                 memory_image_ratio: float | None = None):
        self.stream = stream
        self.size = size
        self.remaining = size
        self.truncated = False
        self.truncated_reason = ""
        # a compressed tar's ratio is the whole stream's: a member that is a memory image
        # (mostly zero pages) lets the stream expand as far as such an image may
        self.guard = guard if memory_image_ratio is not None else None
        self.memory_image_ratio = memory_image_ratio

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = self.remaining if size is None or size < 0 else min(size, self.remaining)
        parts: list[bytes] = []
        while want > 0:
            n = min(want, self.PIECE)
            if self.guard is not None and self.remaining == self.size and n >= HEAD_SNIFF:
                data = self.stream.read(HEAD_SNIFF)
                if is_memory_image(data):
                    self.guard.max_ratio = max(self.guard.max_ratio, self.memory_image_ratio)
                self.guard = None
                n = len(data)
            else:
                data = self.stream.read(n)
            parts.append(data)
            self.remaining -= len(data)
            want -= len(data)
            if len(data) < n:
                self.truncated = True
                got = self.size - self.remaining
                self.truncated_reason = (f"truncated: the archive ends inside this entry "
                                         f"(after {got} of {self.size} bytes)")
                self.remaining = 0
                break
        return b"".join(parts)

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class _EndGuard(io.RawIOBase):
    """Stops a streamed tar that keeps reading past its end.

    ``tarfile`` skips a member it was not asked to read by reading (not seeking) up to
    the size its header declares; a header that claims a terabyte on a small file
    would spin for hours on empty reads.  A few empty reads are normal at the end of an
    archive; after that, :class:`EOFError` ends the walk (recorded as damage).

    >>> g = _EndGuard(io.BytesIO(b"ab"))
    >>> g.read(5), [g.read(5) for _ in range(3)][0]
    (b'ab', b'')
    """

    MAX_EMPTY_READS = 16

    def __init__(self, inner):
        self.inner = inner
        self.empty = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        if not data and size != 0:
            self.empty += 1
            if self.empty > self.MAX_EMPTY_READS:
                raise EOFError("the archive ends before the size its last header declares")
        return data

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def iter_tar(path: Path, compression: str, label: str, limits: IntakeLimits,
             work_dir: Path) -> Iterator[Member | Refused]:
    """Members of the (possibly compressed) tar at ``path``, streamed in one pass.

    Each accepted member must be read before the next one is requested.
    """
    raw_file = open(path, "rb")
    counting = CountingReader(raw_file)
    stream: BinaryIO = counting  # type: ignore[assignment]
    guard: GuardedReader | None = None
    if compression:
        stream = guard = GuardedReader(open_decompressor(counting, compression), counting,  # type: ignore[assignment]
                                       max_ratio=limits.max_ratio, grace=limits.ratio_grace_bytes, label=label)
    stream = _EndGuard(stream)  # type: ignore[assignment]
    try:
        try:
            tf = tarfile.open(fileobj=stream, mode="r|", errorlevel=2)
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            raise ArchiveError(f"cannot open tar: {exc}", artifact=label) from None
        seen: set[str] = set()
        members = iter(tf)
        while True:
            try:
                ti = next(members)
            except StopIteration:
                break
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                yield Refused("(rest of archive)", f"archive is damaged or truncated here: {exc}")
                break
            shown = render_name(ti.name)[0]
            if ti.isdir():
                continue
            name, reason = check_member_name(ti.name)
            if reason:
                yield Refused(shown, reason)
                continue
            if ti.issym() or ti.islnk():
                what = "symbolic link" if ti.issym() else "hard link"
                target = render_name(ti.linkname)[0]
                escapes = target.startswith("/") or ".." in target.replace("\\", "/").split("/")
                where = "leads outside the archive" if escapes else "is not followed"
                yield Refused(shown, f"{what} to {target} {where}")
                continue
            if ti.ischr() or ti.isblk() or ti.isfifo() or ti.isdev():
                yield Refused(shown, "device or FIFO entry: not extracted")
                continue
            if not ti.isfile():
                yield Refused(shown, f"unsupported tar member type {ti.type!r}")
                continue
            try:   # an extra belt: the standard library's own data filter
                tarfile.data_filter(ti, str(work_dir))
            except tarfile.FilterError as exc:
                yield Refused(shown, f"refused by the tar data filter: {exc}")
                continue
            if name in seen:
                yield Refused(shown, "duplicate name in the archive: the first entry was kept")
                continue
            seen.add(name)
            bad = render_name(ti.name)[1]
            notes = ("name is not valid UTF-8 or holds control characters (shown with \\x escapes)",) if bad else ()

            def opener(ti=ti) -> BinaryIO:
                if not ti.issparse():
                    # Straight from the stream: ``extractfile`` drops every byte of a
                    # member that the archive cuts short; this keeps them.
                    return _TarMemberReader(tf.fileobj, ti.size, guard,  # type: ignore[return-value]
                                            limits.max_ratio_memory_image)
                f = tf.extractfile(ti)
                if f is None:
                    raise ArchiveError("member has no data", artifact=f"{label}!/{ti.name}")
                return f  # type: ignore[return-value]

            yield Member(name, opener, notes, float(ti.mtime) if ti.mtime else None)
    finally:
        raw_file.close()


# ------------------------------------------------------------ 7z, RAR, CAB (libarchive)

#: Container formats expanded through libarchive, and the libarchive readers for each.
LIBARCHIVE_FORMATS = {"7z": ("7zip",), "rar": ("rar", "rar5"), "cab": ("cab",)}


def _libarchive():
    """The ``libarchive`` module (libarchive-c), or an :class:`ArchiveError` saying why not."""
    try:
        import libarchive  # noqa: F401  (libarchive-c: needs the system libarchive13)
        import libarchive.ffi as ffi
    except (ImportError, OSError, AttributeError, TypeError) as exc:
        raise ArchiveError(f"7z/RAR/CAB archives need libarchive (Debian libarchive13 and "
                           f"the libarchive-c package): {exc}") from None
    if not hasattr(ffi, "entry_is_encrypted"):
        import ctypes
        try:
            ffi.ffi("entry_is_encrypted", [ffi.c_archive_entry_p], ctypes.c_int)
        except AttributeError:      # libarchive older than 3.2: encryption is found on read
            pass
    return libarchive


class _ArchiveBytes:
    """The compressed bytes libarchive has read from the archive so far (``.count``, for
    :class:`~backline.evidence.streams.GuardedReader`'s ratio check)."""

    def __init__(self, archive):
        self.archive = archive

    @property
    def count(self) -> int:
        try:
            return int(self.archive.bytes_read)
        except Exception:  # pragma: no cover - a closed archive
            return 0


class _EntryReader(io.RawIOBase):
    """The data of one libarchive entry, read block by block (never all at once)."""

    BLOCK = 64 * 1024

    def __init__(self, entry, label: str):
        self.blocks = entry.get_blocks(self.BLOCK)
        self.pending = b""
        self.label = label
        self.done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = self.BLOCK if size is None or size < 0 else size
        while len(self.pending) < want and not self.done:
            try:
                self.pending += next(self.blocks)
            except StopIteration:
                self.done = True
            except Exception as exc:    # libarchive.ArchiveError: damaged or encrypted data
                self.done = True
                raise ArchiveError(_libarchive_message(exc).removeprefix("cannot read: "),
                                   artifact=self.label) from None
        data, self.pending = self.pending[:want], self.pending[want:]
        return data

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _libarchive_message(exc: BaseException) -> str:
    msg = getattr(exc, "msg", None) or str(exc)
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    low = msg.lower()
    if "passphrase" in low or "encrypt" in low or "password" in low:
        return "encrypted entry (password protected): cannot be read"
    return f"cannot read: {msg}"


def _entry_time(entry) -> float | None:
    try:
        t = entry.mtime
        return float(t) if t else None
    except Exception:  # pragma: no cover - an entry without a time
        return None


def _encrypted(lib, entry) -> bool:
    f = getattr(lib.ffi, "entry_is_encrypted", None)
    if f is None:
        return False
    try:
        return bool(f(entry._entry_p))
    except Exception:  # pragma: no cover
        return False


def iter_libarchive(path: Path, fmt: str, label: str, limits: IntakeLimits) -> Iterator[Member | Refused]:
    """Members of the 7z, RAR or CAB archive at ``path``, streamed through libarchive.

    The same checks as for zip and tar: names (traversal, absolute, NUL), links and
    devices refused, encrypted entries refused, duplicates refused; every member is
    read through a :class:`GuardedReader` whose ratio is taken against the archive
    bytes libarchive has read so far (7z packs many files in one solid block, so a
    member has no compressed size of its own).  The entry limit and the nesting
    depth are enforced by the caller, as for zip and tar.  Each accepted member
    must be read before the next one is requested.
    """
    lib = _libarchive()
    readers = LIBARCHIVE_FORMATS[fmt]
    try:
        cm = lib.file_reader(str(path), format_name=readers[0], filter_name="none") if len(readers) == 1 else \
            _reader_any(lib, str(path), readers)
        archive = cm.__enter__()
    except ArchiveError:
        raise
    except Exception as exc:
        why = _libarchive_message(exc)
        raise ArchiveError(why.replace("cannot read: ", f"cannot open {fmt} archive: "), artifact=label) from None
    consumed = _ArchiveBytes(archive)
    seen: set[str] = set()
    try:
        entries = iter(archive)
        while True:
            try:
                entry = next(entries)
            except StopIteration:
                break
            except Exception as exc:        # damaged headers, a cut archive, encrypted headers
                why = _libarchive_message(exc)
                if why.startswith("encrypted"):
                    yield Refused("(archive)", "encrypted archive (password-protected headers): "
                                               "cannot be read")
                else:
                    yield Refused("(rest of archive)", f"archive is damaged or truncated here: {why}")
                break
            try:
                raw_name = entry.pathname or ""
            except UnicodeDecodeError:
                raw_name = ""
            if not raw_name:
                try:
                    raw = lib.ffi.entry_pathname(entry._entry_p) or b""
                    raw_name = raw.decode("utf-8", "surrogateescape")
                except Exception:
                    raw_name = ""
            shown, bad = render_name(raw_name or "(no name)")
            if entry.isdir:
                continue
            name, reason = check_member_name(raw_name)
            if reason:
                yield Refused(shown, reason)
                continue
            if entry.issym or entry.islnk:
                what = "symbolic link" if entry.issym else "hard link"
                target = render_name(entry.linkpath or "")[0]
                escapes = target.startswith("/") or ".." in target.replace("\\", "/").split("/")
                where = "leads outside the archive" if escapes else "is not followed"
                yield Refused(shown, f"{what} to {target} {where}")
                continue
            if entry.isblk or entry.ischr or entry.isfifo or entry.issock:
                yield Refused(shown, "device, FIFO or socket entry: not extracted")
                continue
            if not entry.isreg:
                yield Refused(shown, "unsupported entry type")
                continue
            if _encrypted(lib, entry):
                yield Refused(shown, "encrypted entry (password protected): cannot be read")
                continue
            if name in seen:
                yield Refused(shown, "duplicate name in the archive: the first entry was kept")
                continue
            seen.add(name)
            notes = ("name is not valid UTF-8 or holds control characters (shown with \\x escapes)",) if bad else ()

            def opener(entry=entry, shown=shown) -> BinaryIO:
                where = f"{label}!/{shown}"
                return GuardedReader(_EntryReader(entry, where), consumed,  # type: ignore[arg-type]
                                     max_ratio=limits.max_ratio, grace=limits.ratio_grace_bytes,
                                     label=where, memory_image_ratio=limits.max_ratio_memory_image)

            yield Member(name, opener, notes, _entry_time(entry))
    finally:
        try:
            cm.__exit__(None, None, None)
        except Exception:  # pragma: no cover - closing a damaged archive
            pass


def _reader_any(lib, path: str, readers: tuple[str, ...]):
    """A libarchive reader that accepts any of ``readers`` (RAR 4 and RAR 5)."""
    from contextlib import contextmanager

    @contextmanager
    def cm():
        with lib.read.new_archive_read(format_name=readers[0], filter_name="none") as archive_p:
            for extra in readers[1:]:
                lib.ffi.get_read_format_function(extra)(archive_p)
            lib.ffi.read_open_filename_w(archive_p, path, 64 * 1024)
            yield lib.read.ArchiveRead(archive_p)
    return cm()
