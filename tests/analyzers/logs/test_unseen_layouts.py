"""Logs nobody tuned for, written by real libraries (benchmarks/unseen_logs.py): Python
``logging`` in several layouts and syslog lines sent by ``logger`` - one configuration for all."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from backline.analyzers.logs.loghub import parse_file, score

_SPEC = importlib.util.spec_from_file_location(
    "unseen_logs", Path(__file__).resolve().parents[3] / "benchmarks" / "unseen_logs.py")
unseen = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(unseen)  # type: ignore[union-attr]

LAYOUTS = ["py-asctime", "py-dmy-padded", "py-epoch", "py-us-ampm", "py-no-time", "py-unpadded-pipe",
           "py-time-only", "go-log", "py-mixed", "syslog-3164"]


@pytest.mark.parametrize("name", LAYOUTS)
def test_grouping_on_layouts_nobody_tuned_for(name, tmp_path):
    if name.startswith("syslog") and shutil.which("logger") is None:
        pytest.fail("logger (util-linux bsdutils) is needed")
    i = list(unseen.LAYOUTS).index(name)
    items = unseen.make_items(600, seed=100 + i)
    path = tmp_path / f"{name}.log"
    truth = unseen.LAYOUTS[name](path, items, 100 + i)
    s = score(name, truth, parse_file(path))
    assert s.ga >= 0.99, f"{name}: GA {s.ga:.3f}"
    if name not in ("py-epoch", "py-no-time"):        # their component stays in the message (docs/logs.md)
        assert s.pa >= 0.9, f"{name}: PA {s.pa:.3f}"
