"""What an analysis derived from one piece of evidence, kept for the drill-down views.

The analysis of an upload runs in a scratch folder that is removed when the
job ends.  Before that, :func:`keep_derived` keeps what the views need:

* a manifest row per artifact (``evidence_artifacts``: display path, kind,
  format, size and the sha256 of its bytes, which intake already put in the
  blob store - captures, dumps, event logs and text files are re-read from
  there, nothing is copied);
* each text log's Parquet records (``records.parquet``, written by the
  ``logs.text`` analyzer) copied to ``<root>/ev<evidence id>/``.

The folder of one piece of evidence is bounded (``max_bytes``; a records file
that does not fit is not kept, and the manifest says so) and is replaced
whenever the evidence is analysed again.  Caches the views make later (the
packet index of a capture) live in the same folder and count against the same
bound.

>>> import tempfile, pathlib
>>> d = DerivedStore(pathlib.Path(tempfile.mkdtemp()), max_bytes=10)
>>> src = pathlib.Path(tempfile.mkdtemp()) / "records.parquet"
>>> _ = src.write_bytes(b"12345678")
>>> d.keep_file(7, src, "records-1.parquet")
('records-1.parquet', None)
>>> d.keep_file(7, src, "records-2.parquet")[1]
'not kept: the derived data of this evidence would pass its limit of 10 bytes'
>>> d.clear(7); d.used(7)
0
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from backline.model.core import AnalysisResult
from backline.storage.blobs import BlobStore

#: Default bound of one piece of evidence's derived data (records, packet index).
MAX_DERIVED = 2 * 1024 ** 3
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


class DerivedStore:
    """Folders ``<root>/ev<id>`` of derived files, each bounded to ``max_bytes``."""

    def __init__(self, root: Path, *, max_bytes: int = MAX_DERIVED):
        self.root = Path(root)
        self.max_bytes = max_bytes

    def folder(self, evidence_id: int) -> Path:
        return self.root / f"ev{int(evidence_id)}"

    def path(self, evidence_id: int, name: str) -> Path:
        """The file ``name`` of evidence ``evidence_id`` (a plain name, never a path)."""
        if not _NAME.match(name) or name in (".", ".."):
            raise ValueError(f"not a derived file name: {name!r}")
        return self.folder(evidence_id) / name

    def used(self, evidence_id: int) -> int:
        d = self.folder(evidence_id)
        if not d.is_dir():
            return 0
        return sum(f.stat().st_size for f in d.iterdir() if f.is_file())

    def room(self, evidence_id: int) -> int:
        """Bytes still free in this evidence's folder."""
        return max(0, self.max_bytes - self.used(evidence_id))

    def clear(self, evidence_id: int) -> None:
        shutil.rmtree(self.folder(evidence_id), ignore_errors=True)

    def keep_file(self, evidence_id: int, src: Path, name: str) -> tuple[str | None, str | None]:
        """Copy ``src`` in as ``name``: ``(name, None)``, or ``(None, why not)``."""
        try:
            size = src.stat().st_size
        except OSError as exc:
            return None, f"not kept: {exc.strerror or exc}"
        if size > self.room(evidence_id):
            return None, f"not kept: the derived data of this evidence would pass its limit of {self.max_bytes} bytes"
        dest = self.path(evidence_id, name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        try:
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            return None, f"not kept: {exc.strerror or exc}"
        return name, None


def keep_derived(derived: DerivedStore, store: BlobStore, evidence_id: int,
                 result: AnalysisResult) -> list[dict[str, Any]]:
    """Keep what the views need of ``result`` (see the module docstring).

    Returns the manifest rows (``evidence_artifacts`` columns without the ids),
    one per artifact.  The evidence's folder is emptied first.
    """
    derived.clear(evidence_id)
    parquet = {f.artifact: Path(str(f.value)) for f in result.facts
               if f.name == "log.parquet" and isinstance(f.value, str)}
    rows = []
    for i, a in enumerate(result.artifacts, 1):
        sha = a.sha256 if a.local_path is not None and a.sha256 and store.exists(a.sha256) else None
        records = note = None
        src = parquet.get(a.path)
        if src is not None:
            records, note = derived.keep_file(evidence_id, src, f"records-{i}.parquet")
        rows.append({"path": a.path[:1000], "kind": a.kind.value, "format": (a.format or "")[:100],
                     "sha256": sha, "size": int(a.size), "records": records,
                     "note": note[:500] if note else None})
    return rows

