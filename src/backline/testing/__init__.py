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
