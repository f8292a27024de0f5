"""Content-addressed evidence store.

Files are stored once under ``<root>/sha256/ab/cd/<sha256>`` whatever name
they arrived with; putting the same bytes twice stores them once.  Writes are
streamed in chunks (multi-GB files never sit in memory) into a temporary file
in the same folder and renamed into place atomically, so a crash mid-write
never leaves a half blob under a real name.

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

    def put_stream(self, stream: BinaryIO, *, max_bytes: int | None = None) -> StoredBlob:
        """Store everything read from ``stream``; stop with StorageError past ``max_bytes``."""
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        break
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise StorageError(f"upload larger than the limit of {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            sha = digest.hexdigest()
            final = self.path(sha)
            if final.is_file():
                os.unlink(tmp_name)
                return StoredBlob(sha, size, created=False)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, final)
            return StoredBlob(sha, size, created=True)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def put_file(self, path: Path) -> StoredBlob:
        """Store a file from disk (streamed)."""
        with open(path, "rb") as f:
            return self.put_stream(f)

    def copy_out(self, sha: str, dest: Path) -> Path:
        with self.open(sha) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
        return dest


def sha256_file(path: Path) -> str:
    """The sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()
