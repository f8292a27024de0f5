"""Shared helpers for minidump tests: find every dump with generated oracles."""

from __future__ import annotations

import json
from pathlib import Path

from backline.testing import corpus_dir


def oracle_dumps() -> list[tuple[Path, Path]]:
    """(dump, generated dir) for every ``X.dmp`` with an ``X.rust.json`` beside it in ``*/generated/``."""
    root = corpus_dir() / "dumps"
    out = []
    for gen in sorted(root.glob("**/generated")):
        for js in sorted(gen.glob("*.rust.json")):
            stem = js.name[: -len(".rust.json")]
            if stem.endswith(".nosym"):
                continue
            dmp = gen.parent / f"{stem}.dmp"
            if dmp.exists():
                out.append((dmp, gen))
    return out


def load_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def symbols_dir(dmp: Path) -> Path:
    return dmp.parent / "symbols"
