"""Packing a drill as a customer would (zip, tar.gz, folders, nested) and writing its truth."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Bundle:
    """Entries of a customer's archive: (name inside, bytes, mtime)."""

    entries: list[tuple[str, bytes, float]] = field(default_factory=list)

    def add(self, name: str, src: Path | bytes | str, mtime: float | None = None) -> "Bundle":
        if isinstance(src, Path):
            data, mt = src.read_bytes(), src.stat().st_mtime
        else:
            data, mt = (src.encode() if isinstance(src, str) else src), time.time()
        self.entries.append((name, data, mtime if mtime is not None else mt))
        return self

    def zip_bytes(self) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data, mt in self.entries:
                info = zipfile.ZipInfo(name, time.gmtime(max(mt, 315532800))[:6])
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, data)
        return buf.getvalue()

    def tgz_bytes(self) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, data, mt in self.entries:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), int(mt), 0o644
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def write_dir(self, root: Path) -> Path:
        for name, data, mt in self.entries:
            p = root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            os.utime(p, (mt, mt))
        return root


def write_truth(out: Path, name: str, *, description: str, codes: list[str] | None = None,
                artifact: str = "*", contains: list[str] | None = None,
                data_at_least: dict[str, float] | None = None, alternatives: list[dict] | None = None) -> None:
    """``truth.json``: the root cause as the finding codes, artifact glob and strings a
    correct probable cause rests on; without ``codes`` the bundle is a healthy one.  A
    known-issue match (``KB.MATCH``) resting on the same evidence (same artifact, same strings)
    expresses the cause as well, so it is added to every matcher's codes."""
    doc: dict = {"name": name, "healthy": codes is None}
    if codes is not None:
        doc["root_cause"] = {"codes": _with_kb(codes), "artifact": artifact, "contains": contains or []}
        if data_at_least:
            doc["root_cause"]["data_at_least"] = data_at_least
        if alternatives:
            doc["root_cause"]["alternatives"] = [dict(a, codes=_with_kb(a["codes"])) for a in alternatives]
    doc["description"] = description
    (out / "truth.json").write_text(json.dumps(doc, indent=2) + "\n")


def _with_kb(codes: list[str]) -> list[str]:
    return codes + [c for c in ("KB.MATCH",) if c not in codes]
