"""Where Backline keeps its data, and other process-wide settings.

The data directory defaults to ``~/.local/share/backline`` and is overridden
by ``BACKLINE_HOME``.  Nothing here touches the disk until asked.
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The Backline data directory (not created here)."""
    env = os.environ.get("BACKLINE_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "backline"


#: Environment variables for the analyzers' hard limits (``backline analyze`` options override them;
#: the server's job runner reads them, ``backline serve --analyzer-timeout/--analyzer-memory`` sets them).
TIMEOUT_ENV = "BACKLINE_ANALYZER_TIMEOUT"
MEMORY_ENV = "BACKLINE_ANALYZER_MEMORY_MB"


def _env_number(name: str, default: float) -> float:
    from backline.errors import UsageError

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number") from None
    if value < 0 or value != value:
        raise UsageError(f"{name}={raw!r} must be 0 (no limit) or more")
    return value


def analyzer_timeout_s() -> float | None:
    """Seconds one analyzer may spend on one file (``BACKLINE_ANALYZER_TIMEOUT``; 0 = no limit)."""
    from backline.analyzers.runner import DEFAULT_TIMEOUT_S
    return _env_number(TIMEOUT_ENV, DEFAULT_TIMEOUT_S) or None


def analyzer_memory_mb() -> int | None:
    """Address-space limit of one analyzer task process in MiB (``BACKLINE_ANALYZER_MEMORY_MB``; 0 = none)."""
    from backline.analyzers.runner import DEFAULT_MEMORY_MB
    return int(_env_number(MEMORY_ENV, DEFAULT_MEMORY_MB)) or None
