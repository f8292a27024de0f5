"""Healthy bundle: nginx and the catalog service on a normal day.

The same real programs as ``slow_backend`` (see its docstring) with the fault left out; the usual
noise stays: healthy searches, robots.txt 404s, the chronic cache-eviction warning and an old core of an unrelated export tool.
"""

from __future__ import annotations

from pathlib import Path

import slow_backend
from kit import write_truth

NAME = "healthy-catalog"
CLASS = "healthy"
SEED = 1204


def build(out: Path) -> None:
    slow_backend.build(out, fault=False, name=NAME, seed=SEED)
    write_truth(out, NAME, description="No incident: nginx and the catalog service on a normal day; the usual noise (healthy searches, robots.txt 404s, the chronic cache-eviction warning and an old core of an unrelated export tool).")
