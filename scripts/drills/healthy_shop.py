"""Healthy bundle: checkout, its ledger database and nginx on a normal day.

The same real programs as ``refused_ledger`` (see its docstring) with the fault left out; the usual
noise stays: healthy traffic, a favicon 404, the chronic slow-request warning and an old KeyError traceback.
"""

from __future__ import annotations

from pathlib import Path

import refused_ledger
from kit import write_truth

NAME = "healthy-shop"
CLASS = "healthy"
SEED = 1201


def build(out: Path) -> None:
    refused_ledger.build(out, fault=False, name=NAME, seed=SEED)
    write_truth(out, NAME, description="No incident: checkout, its ledger database and nginx on a normal day; the usual noise (healthy traffic, a favicon 404, the chronic slow-request warning and an old KeyError traceback).")
