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


#: A complete escalation for the example case (every intake item filled).
EXAMPLE_INTAKE = {"symptoms": "Orders fail to reserve stock", "business_impact": "Orders lost for 300 users",
                  "environment": "4.2.1 on RHEL 9", "steps_to_reproduce": "Place an order",
                  "already_tried": "Restart", "expected": "Reserved", "actual": "HTTP 500",
                  "evidence": ["bundle.zip"]}


def example_bundle() -> Path:
    """The example case's evidence, ``examples/case-001/bundle.zip`` (real programs failing)."""
    return _ROOT / "examples" / "case-001" / "bundle.zip"


def report_json(paths) -> bytes:
    """The ``report.json`` ``backline analyze --format json`` writes for ``paths`` (no evidence store)."""
    from backline.pipeline import AnalyzeOptions, analyze
    from backline.report import build_report, iter_json

    return "".join(iter_json(build_report(analyze([Path(p) for p in paths], AnalyzeOptions())))).encode()
