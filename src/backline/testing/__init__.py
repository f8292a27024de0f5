"""Helpers for tests of analyzers and rules.

``corpus_dir()`` finds the shared test corpus (``../shared/corpus`` beside the
project root, or ``BACKLINE_CORPUS``).  Tests read it in place; nothing from it
is copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[3]


def project_root() -> Path:
    return _ROOT


def corpus_dir() -> Path:
    env = os.environ.get("BACKLINE_CORPUS")
    if env:
        return Path(env)
    return _ROOT.parent / "shared" / "corpus"


def make_artifact(path: Path, kind=None, *, display: str | None = None):
    """An :class:`~backline.model.Artifact` for a file on disk, classified like intake does
    unless ``kind`` is given."""
    from backline.model import Artifact
    from backline.storage.blobs import sha256_file

    path = Path(path)
    fmt = ""
    problems: tuple[str, ...] = ()
    if kind is None:
        from backline.evidence import classify_file

        cls = classify_file(path)
        kind, fmt, problems = cls.kind, cls.format, tuple(cls.problems)
    return Artifact(path=display or path.name, kind=kind, size=path.stat().st_size,
                    sha256=sha256_file(path), local_path=path, format=fmt, problems=problems)


def run_analyzer(cls, path: Path, kind=None, **settings):
    """Run one analyzer class on one file the way the runner does; returns the TaskResult
    (``.run``, ``.events``, ``.findings``, ``.facts``)."""
    from backline.analyzers.runner import RunSettings, run_task

    art = make_artifact(path, kind)
    return run_task(cls, art, RunSettings(**settings))
