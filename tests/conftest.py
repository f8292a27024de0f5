from __future__ import annotations

from pathlib import Path

import pytest

from backline.testing import corpus_dir
from core_programs import killed_deadlock, linux_cores  # noqa: F401 - fixtures: real cores made by gcc + gdb


@pytest.fixture(scope="session")
def corpus() -> Path:
    path = corpus_dir()
    if not path.is_dir():
        pytest.fail(f"test corpus not found at {path} (set BACKLINE_CORPUS)")
    return path


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own BACKLINE_HOME so nothing touches the user's data."""
    home = tmp_path_factory.mktemp("backline-home")
    monkeypatch.setenv("BACKLINE_HOME", str(home))
    yield
