"""Healthy bundle: the document store and its ingest client on a normal day.

The same real programs as ``disk_full`` (see its docstring) with the fault left out; the usual
noise stays: healthy uploads, 404s for stale references, the chronic slow-fsync warning and an old core of an unrelated report tool.
"""

from __future__ import annotations

from pathlib import Path

import disk_full
from kit import write_truth

NAME = "healthy-docstore"
CLASS = "healthy"
SEED = 1205


def build(out: Path) -> None:
    disk_full.build(out, fault=False, name=NAME, seed=SEED)
    write_truth(out, NAME, description="No incident: the document store and its ingest client on a normal day; the usual noise (healthy uploads, 404s for stale references, the chronic slow-fsync warning and an old core of an unrelated report tool).")
