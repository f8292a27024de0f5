"""Content-addressed evidence store.

Files are stored once under ``<root>/sha256/ab/cd/<sha256>`` whatever name
they arrived with; putting the same bytes twice stores them once.  Writes are
streamed in chunks (multi-GB files never sit in memory) into a temporary file
in the store's ``tmp`` folder and renamed into place atomically (after an
fsync), so a crash mid-write never leaves a half blob under a real name.  A
writer holds an exclusive ``flock`` on its temporary file; :meth:`BlobStore.sweep`
removes the temporary files no live writer holds (left by a killed process).

>>> import tempfile, io, pathlib
>>> store = BlobStore(pathlib.Path(tempfile.mkdtemp()))
>>> a = store.put_stream(io.BytesIO(b"hello"))
>>> b = store.put_stream(io.BytesIO(b"hello"))
>>> a == b, a.size, a.created, b.created
(True, 5, True, False)
>>> store.path(a.sha256).read_bytes()
b'hello'
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from backline.config import data_dir
from backline.errors import StorageError

CHUNK = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class StoredBlob:
    sha256: str
    size: int
    created: bool = field(default=False, compare=False)   # False when the bytes were already there


class BlobStore:
    """A folder of blobs named by their sha256."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else data_dir() / "blobs"

    def _dir(self, sha: str) -> Path:
        return self.root / "sha256" / sha[:2] / sha[2:4]

    def path(self, sha: str) -> Path:
        """Where the blob ``sha`` lives (it may not exist)."""
        if not _HEX64.match(sha):
            raise StorageError(f"not a sha256 digest: {sha!r}")
        return self._dir(sha) / sha

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def open(self, sha: str) -> BinaryIO:
        try:
            return open(self.path(sha), "rb")
        except FileNotFoundError:
            raise StorageError(f"blob {sha} is not in the store at {self.root}") from None

    def writer(self, *, max_bytes: int | None = None) -> "BlobWriter":
        """A writer that streams bytes straight into the store (see :class:`BlobWriter`)."""
        return BlobWriter(self, max_bytes)

    def put_stream(self, stream: BinaryIO, *, max_bytes: int | None = None) -> StoredBlob:
        """Store everything read from ``stream``; stop with StorageError past ``max_bytes``."""
        w = self.writer(max_bytes=max_bytes)
        try:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                w.write(chunk)
            return w.commit()
        except BaseException:
            w.abort()
            raise

    def sweep(self) -> int:
        """Remove temporary files of writes whose writer is gone (a killed process); returns how many.
        Safe while other processes write: a live writer's file is locked and kept."""
        n = 0
        for path in (self.root / "tmp").glob("incoming-*"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue                                  # a live writer holds it
            try:
                path.unlink()
                n += 1
            except FileNotFoundError:
                pass
            finally:
                os.close(fd)
        return n

    def put_file(self, path: Path) -> StoredBlob:
        """Store a file from disk (streamed)."""
        with open(path, "rb") as f:
            return self.put_stream(f)

    def copy_out(self, sha: str, dest: Path) -> Path:
        with self.open(sha) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
        return dest


class BlobWriter:
    """Bytes written straight into the store: into a locked temporary file in its ``tmp``
    folder, hashed as they come, renamed to their digest on :meth:`commit` (once; the
    temporary file goes when the bytes were already stored).  Past ``max_bytes`` a write
    raises StorageError and the temporary file is gone: nothing is left behind.

    >>> import tempfile, pathlib
    >>> store = BlobStore(pathlib.Path(tempfile.mkdtemp()))
    >>> w = store.writer(max_bytes=8)
    >>> w.write(b"hello")
    >>> w.commit().size
    5
    >>> w = store.writer(max_bytes=8)
    >>> w.write(b"too many bytes")
    Traceback (most recent call last):
    backline.errors.StorageError: upload larger than the limit of 8 bytes
    >>> list((store.root / "tmp").iterdir())
    []
    """

    def __init__(self, store: BlobStore, max_bytes: int | None = None):
        self.store = store
        self.max_bytes = max_bytes
        self.size = 0
        self._digest = hashlib.sha256()
        tmp_dir = store.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=tmp_dir, prefix="incoming-")
        fcntl.flock(fd, fcntl.LOCK_EX)       # held until commit/abort/process death (see BlobStore.sweep)
        self._out = os.fdopen(fd, "wb")
        self._done = False

    def write(self, data: bytes) -> None:
        if self._done:
            raise StorageError("write to a finished blob writer")
        self.size += len(data)
        if self.max_bytes is not None and self.size > self.max_bytes:
            self.abort()
            raise StorageError(f"upload larger than the limit of {self.max_bytes} bytes")
        self._digest.update(data)
        self._out.write(data)

    def commit(self) -> StoredBlob:
        """Put the bytes in place under their digest; returns the stored blob."""
        if self._done:
            raise StorageError("blob writer already finished")
        try:
            self._out.flush()
            os.fsync(self._out.fileno())
            sha = self._digest.hexdigest()
            final = self.store.path(sha)
            if final.is_file():
                os.unlink(self._tmp)
                return StoredBlob(sha, self.size, created=False)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._tmp, final)
            return StoredBlob(sha, self.size, created=True)
        except BaseException:
            self.abort()
            raise
        finally:
            self._close()

    def abort(self) -> None:
        """Drop what was written (nothing is left behind)."""
        if self._done:
            return
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass
        self._close()

    def _close(self) -> None:
        self._done = True
        try:
            self._out.close()
        except OSError:
            pass


def sha256_file(path: Path) -> str:
    """The sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
