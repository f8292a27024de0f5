"""Healthy bundle: the ingest server and the sensor gateway on a normal day.

The same real programs as ``crash_midstream`` (see its docstring) with the fault left out; the usual
noise stays: four sensors streaming, one closing normally, chronic late-heartbeat warnings and an old connection-reset traceback.
"""

from __future__ import annotations

from pathlib import Path

import crash_midstream
from kit import write_truth

NAME = "healthy-stream"
CLASS = "healthy"
SEED = 1203


def build(out: Path) -> None:
    crash_midstream.build(out, fault=False, name=NAME, seed=SEED)
    write_truth(out, NAME, description="No incident: the ingest server and the sensor gateway on a normal day; the usual noise (four sensors streaming, one closing normally, chronic late-heartbeat warnings and an old connection-reset traceback).")
