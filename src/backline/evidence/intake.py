"""Take evidence in: files, folders and (nested) archives -> artifacts.

``collect(paths, work_dir)`` walks every path, expands zip and tar archives
(also gzip/bzip2/xz/zstd-compressed ones), 7z, RAR and CAB archives (through
libarchive) and single compressed files,
classifies every file found and returns an :class:`Intake`.  Hostile
entries are refused one by one (``Intake.refusals``) and the rest of the
bundle is still taken in.

Extracted bytes are only ever written as fresh numbered files
(``000123-app.log``) in a new ``intake-*`` folder inside ``work_dir``; names
from archives are used for display, never as paths.  With a :class:`~backline.storage.blobs.BlobStore`
each artifact's bytes go into the store and ``local_path`` points there.

>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "app.log").write_text("2024-05-01 10:00:00 INFO up\\n2024-05-01 10:00:05 ERROR down\\n")
>>> intake = collect([d / "app.log"], d / "work")
>>> [(a.path, a.kind.value) for a in intake.artifacts]
[('app.log', 'text_log')]
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Sequence

from backline.errors import ArchiveError, EvidenceError, NothingReadable, StorageError, UnsafeArchiveEntry
from backline.evidence.archives import LIBARCHIVE_FORMATS, Member, iter_libarchive, iter_tar, iter_zip
from backline.evidence.classify import (Classification, classify_head, classify_zero_filled, read_head,
                                       starts_zero_filled, strip_compression_suffix)
from backline.evidence.limits import IntakeLimits
from backline.evidence.names import render_name, safe_basename
from backline.evidence.streams import (STREAM_ERRORS, Budget, CountingReader, GuardedReader, copy_bounded,
                                       open_decompressor)
from backline.evidence.timerange import probe_time_range
from backline.model.core import Artifact, ArtifactKind, Refusal
from backline.storage.blobs import BlobStore, sha256_file


@dataclass(frozen=True, slots=True)
class Intake:
    """Everything found in the given paths.

    ``artifacts``: every file found, readable or not (``problems`` say why);
    ``refusals``: every entry refused, with the reason; ``inputs``: the
    paths as given; ``work_dir``: the folder this intake wrote into.
    """

    inputs: tuple[str, ...]
    artifacts: tuple[Artifact, ...]
    refusals: tuple[Refusal, ...]
    work_dir: Path | None = None

    @property
    def usable(self) -> tuple[Artifact, ...]:
        """Artifacts with bytes to analyse (readable and not empty)."""
        return tuple(a for a in self.artifacts if a.local_path is not None and a.size > 0)


class _Collector:
    def __init__(self, work_dir: Path, limits: IntakeLimits, store: BlobStore | None,
                 progress: Callable[[str], None] | None):
        work_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir = Path(tempfile.mkdtemp(prefix="intake-", dir=work_dir))
        self.limits = limits
        self.store = store
        self.progress = progress
        self.budget = Budget(limits)
        self.slots = 0
        self.artifacts: list[Artifact] = []
        self.refusals: list[Refusal] = []
        self.used: set[str] = set()
        self.mtimes: dict[Path, float] = {}   # extracted file -> the time its source carried

    # ------------------------------------------------------------ helpers
    def _slot(self, name: str) -> Path:
        """A fresh file path in the run folder: ``000123-<safe name>`` (never an archive path)."""
        self.slots += 1
        return self.run_dir / f"{self.slots:06d}-{safe_basename(name)}"

    def _unique(self, display: str) -> str:
        if display not in self.used:
            self.used.add(display)
            return display
        n = 2
        while f"{display}~{n}" in self.used:
            n += 1
        self.used.add(f"{display}~{n}")
        return f"{display}~{n}"

    def refuse(self, path: str, reason: str) -> None:
        self.refusals.append(Refusal(path, reason))

    def _discard(self, path: Path, original: bool) -> None:
        if not original:
            try:
                path.unlink()
            except OSError:
                pass

    # ------------------------------------------------------------ inputs
    def add_input(self, p: Path) -> None:
        display, bad = render_name(p.name or str(p))
        notes = ("file name is not valid UTF-8 or holds control characters (shown with \\x escapes)",) if bad else ()
        try:
            st = os.stat(p)
        except OSError as exc:
            raise EvidenceError(f"cannot read: {exc.strerror or exc}", artifact=render_name(str(p))[0]) from None
        if stat.S_ISDIR(st.st_mode):
            self.walk_dir(p, display)
        elif stat.S_ISREG(st.st_mode):
            self.file(p, display, 0, original=True, notes=notes)
        else:
            self.refuse(display, "not a regular file or folder (device, FIFO or socket): not read")

    def walk_dir(self, root: Path, display_root: str) -> None:
        real_root = os.path.realpath(root)

        def onerror(exc: OSError) -> None:
            rel = os.path.relpath(exc.filename, root) if exc.filename else "?"
            self.refuse(f"{display_root}/{render_name(rel)[0]}",
                        f"cannot list folder: {exc.strerror or exc}")

        for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=False):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            prefix = display_root if rel_dir == "." else f"{display_root}/{render_name(rel_dir)[0]}"
            for d in list(dirnames):
                if os.path.islink(os.path.join(dirpath, d)):
                    self.refuse(f"{prefix}/{render_name(d)[0]}", "symbolic link to a folder: not followed")
                    dirnames.remove(d)
            for fname in sorted(filenames):
                full = Path(dirpath) / fname
                shown, bad = render_name(fname)
                display = f"{prefix}/{shown}"
                notes = ("file name is not valid UTF-8 or holds control characters (shown with \\x escapes)",) if bad else ()
                try:
                    st = os.lstat(full)
                except OSError as exc:
                    self._unreadable(display, str(exc.strerror or exc), 0, notes)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    target = os.path.realpath(full)
                    if os.path.commonpath([real_root, target]) != real_root:
                        self.refuse(display, f"symbolic link to {render_name(os.readlink(full))[0]} "
                                             "leads outside the folder: not followed")
                        continue
                    if not os.path.isfile(target):
                        self.refuse(display, "symbolic link to something that is not a file: not followed")
                        continue
                    self.file(Path(target), display, 0, original=True, notes=notes)
                elif stat.S_ISREG(st.st_mode):
                    self.file(full, display, 0, original=True, notes=notes)
                else:
                    self.refuse(display, "not a regular file (device, FIFO or socket): not read")

    # ------------------------------------------------------------ one file
    def _unreadable(self, display: str, why: str, size: int, notes: tuple[str, ...]) -> None:
        self.artifacts.append(Artifact(self._unique(display), ArtifactKind.UNKNOWN, size, "",
                                       None, problems=(f"unreadable: {why}",) + notes))

    def file(self, path: Path, display: str, nest: int, *, original: bool, notes: tuple[str, ...] = (),
             sha256: str = "", compression: str = "", carried: tuple[str, ...] = ()) -> None:
        """Classify the on-disk file ``path`` (shown as ``display``) and expand or record it.

        ``nest`` counts archives and compression layers already passed through.
        """
        if self.progress:
            self.progress(display)
        try:
            head, size = read_head(path, self.limits.head_bytes)
        except OSError as exc:
            self._unreadable(display, str(exc.strerror or exc), 0, notes)
            return
        shown = strip_compression_suffix(display) if compression else display
        try:
            if starts_zero_filled(head, size):
                cls = classify_zero_filled(path, shown, size, self.limits.head_bytes)
            else:
                cls = classify_head(head, shown, size)
        except OSError as exc:
            self._unreadable(display, str(exc.strerror or exc), 0, notes)
            return
        problems = notes + carried
        broken = cls.kind is ArtifactKind.ARCHIVE and cls.format == cls.compression and bool(cls.problems)
        if cls.compression and not broken:
            if nest + 1 > self.limits.max_depth:
                self.refuse(display, f"nested deeper than the limit of {self.limits.max_depth} "
                                     "archives/compression layers: not expanded")
                self._record(path, display, cls, size, original, problems, sha256, compression)
                return
            if cls.is_archive:
                seen = self.expand(path, display, "tar", cls.compression, nest + 1)
                if seen:
                    self._discard(path, original)
                    return
                why = self.refusals[-1].reason if seen is None else "empty archive (no files in it)"
                cls = Classification(ArtifactKind.ARCHIVE, cls.format, cls.problems + (why,))
                self._record(path, display, cls, size, original, problems, sha256, compression)
                return
            dest = self._slot(display.rsplit("/", 1)[-1].rsplit(".", 1)[0])
            try:
                with open(path, "rb") as raw_f:
                    raw = CountingReader(raw_f)
                    guarded = GuardedReader(open_decompressor(raw, cls.compression), raw,  # type: ignore[arg-type]
                                            max_ratio=self.limits.max_ratio,
                                            grace=self.limits.ratio_grace_bytes, label=display,
                                            memory_image_ratio=self.limits.max_ratio_memory_image)
                    copied = copy_bounded(guarded, dest, self.budget, display)  # type: ignore[arg-type]
            except UnsafeArchiveEntry as exc:
                self.refuse(display, exc.message)
                self._discard(path, original)
                return
            except OSError as exc:
                self._unreadable(display, str(exc.strerror or exc), size, problems)
                return
            self._carry_time(path, dest, original)
            self._discard(path, original)
            extra = (copied.problem,) if copied.problem else ()
            self.file(dest, display, nest + 1, original=False, notes=notes, sha256=copied.sha256,
                      compression=cls.compression, carried=carried + extra)
            return
        if cls.is_archive:
            if nest + 1 > self.limits.max_depth:
                self.refuse(display, f"archive nested deeper than the limit of {self.limits.max_depth}: "
                                     "not expanded")
                self._record(path, display, cls, size, original, problems + ("not expanded: nesting limit",),
                             sha256, compression)
                return
            seen = self.expand(path, display, cls.format, "", nest + 1)
            if seen:
                self._discard(path, original)
                return
            why = self.refusals[-1].reason if seen is None else "empty archive (no files in it)"
            cls = Classification(ArtifactKind.ARCHIVE, cls.format, cls.problems + (why,))
        self._record(path, display, cls, size, original, problems, sha256, compression)

    def _time_of(self, path: Path, original: bool) -> float | None:
        """When the evidence at ``path`` was last written, as its source tells: the input
        file's mtime, or the time the archive member carried."""
        if original:
            try:
                return os.stat(path).st_mtime
            except OSError:
                return None
        return self.mtimes.get(path)

    def _carry_time(self, src: Path, dest: Path, original: bool) -> None:
        t = self._time_of(src, original)
        if t is not None:
            self.mtimes[dest] = t

    def _record(self, path: Path, display: str, cls: Classification, size: int, original: bool,
                problems: tuple[str, ...], sha256: str, compression: str) -> None:
        mtime = self._time_of(path, original)
        try:
            sha = sha256 or sha256_file(path)
            local: Path = path.resolve() if original else path
            if self.store is not None:
                try:
                    blob = self.store.put_file(path)
                except OSError as exc:   # the file was just read (sha): the store cannot be written
                    raise StorageError(f"cannot store evidence in {self.store.root}: "
                                       f"{exc.strerror or exc}", artifact=display) from None
                sha = blob.sha256
                local = self.store.path(blob.sha256)
                self._discard(path, original)
        except OSError as exc:
            self._unreadable(display, str(exc.strerror or exc), size, problems)
            return
        start, end, probe_problems = probe_time_range(local, cls, size)
        meta: dict[str, object] = dict(cls.meta)
        if cls.encoding:
            meta["encoding"] = cls.encoding
        if mtime is not None:
            try:     # when the file was last written (its own time, or the archive member's)
                meta["mtime"] = datetime.fromtimestamp(mtime, tz=timezone.utc).isoformat()
            except (ValueError, OverflowError, OSError):
                pass
        self.artifacts.append(Artifact(
            path=self._unique(display), kind=cls.kind, size=size, sha256=sha, local_path=local,
            format=cls.format, compression=compression,
            problems=tuple(dict.fromkeys(cls.problems + problems + probe_problems)),
            time_start=start, time_end=end, meta=meta))

    # ------------------------------------------------------------ archives
    def expand(self, path: Path, display: str, fmt: str, compression: str, nest: int) -> int | None:
        """Expand an archive: the number of entries seen, or None (with a refusal
        recorded) when it cannot be opened."""
        remaining = self.limits.max_entries - self.budget.entries
        seen = 0
        try:
            if fmt == "zip":
                members: Iterable = iter_zip(path, display, self.limits, remaining)
            elif fmt in LIBARCHIVE_FORMATS:
                members = iter_libarchive(path, fmt, display, self.limits)
            else:
                members = iter_tar(path, compression, display, self.limits, self.run_dir)
            for m in members:
                seen += 1
                self.budget.entries += 1
                if self.budget.entries > self.limits.max_entries:
                    self.refuse(f"{display}!/{m.name}", f"entry limit of {self.limits.max_entries} reached: "
                                                        "this and all further entries refused")
                    break
                if not isinstance(m, Member):
                    self.refuse(f"{display}!/{m.name}", m.reason)
                    continue
                self._member(m, display, nest)
        except UnsafeArchiveEntry as exc:
            self.refuse(f"{display}", f"{exc.message} (rest of the archive not read)")
            return seen + 1
        except ArchiveError as exc:
            self.refuse(display, exc.message)
            return None
        except STREAM_ERRORS as exc:
            self.refuse(display, f"cannot read archive: {exc}")
            return None if seen == 0 else seen
        return seen

    def _member(self, m: Member, display: str, nest: int) -> None:
        inner = f"{display}!/{render_name(m.name)[0]}"
        dest = self._slot(m.name)
        try:
            with m.open() as src:
                copied = copy_bounded(src, dest, self.budget, inner)
        except UnsafeArchiveEntry as exc:
            self.refuse(inner, exc.message)
            return
        except (ArchiveError, RuntimeError, NotImplementedError, *STREAM_ERRORS) as exc:
            self.refuse(inner, f"cannot extract: {getattr(exc, 'message', None) or exc}")
            if dest.exists():
                dest.unlink()
            return
        carried = (copied.problem,) if copied.problem else ()
        if m.mtime:
            self.mtimes[dest] = m.mtime
        self.file(dest, inner, nest, original=False, notes=m.notes, sha256=copied.sha256, carried=carried)


def collect(paths: Sequence[Path], work_dir: Path, *, limits: IntakeLimits | None = None,
            store: BlobStore | None = None, progress: Callable[[str], None] | None = None,
            require_readable: bool = True) -> Intake:
    """Take in every path (files, folders, archives); see the module docstring.

    Raises :class:`~backline.errors.EvidenceError` naming the path when a
    given path does not exist or cannot be read at all, and
    :class:`~backline.errors.NothingReadable` when no file with content was
    found (unless ``require_readable`` is False); that exception carries the
    partial intake as ``.intake`` so callers can still list what was found.
    """
    for p in paths:
        if not os.path.lexists(p):
            raise EvidenceError("no such file or directory", artifact=render_name(str(p))[0])
    c = _Collector(Path(work_dir), limits or IntakeLimits(), store, progress)
    for p in paths:
        try:
            c.add_input(Path(p))
        except (EvidenceError, StorageError):
            raise
        except Exception as exc:  # failures are data: record and go on with the other inputs
            c.refuse(render_name(str(p))[0], f"internal error while reading this input: {exc!r}")
    intake = Intake(inputs=tuple(render_name(str(p))[0] for p in paths), artifacts=tuple(c.artifacts),
                    refusals=tuple(c.refusals), work_dir=c.run_dir)
    if require_readable and not intake.usable:
        what = f"{len(intake.artifacts)} file(s) found, none readable with content"
        if intake.refusals:
            first = intake.refusals[0]
            what += f"; {len(intake.refusals)} entr(y/ies) refused (first: {first.path}: {first.reason})"
        elif intake.artifacts:
            first_art = intake.artifacts[0]
            why = "; ".join(first_art.problems) or "no content"
            what += f" (first: {first_art.path}: {why})"
        exc = NothingReadable(f"nothing readable: {what}",
                              artifact=", ".join(render_name(str(p))[0] for p in paths))
        exc.intake = intake  # type: ignore[attr-defined]
        raise exc
    return intake
