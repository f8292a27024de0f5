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
