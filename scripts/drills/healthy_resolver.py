"""Healthy bundle: the site resolver, the payments gateway and the notifier on a normal day.

The same real programs as ``dns_servfail`` (see its docstring) with the fault left out; the usual
noise stays: a routine zone reload, wpad NXDOMAIN probes, a chronic certificate warning and an old core of an unrelated tool.
"""

from __future__ import annotations

from pathlib import Path

import dns_servfail
from kit import write_truth

NAME = "healthy-resolver"
CLASS = "healthy"
SEED = 1202


def build(out: Path) -> None:
    dns_servfail.build(out, fault=False, name=NAME, seed=SEED)
    write_truth(out, NAME, description="No incident: the site resolver, the payments gateway and the notifier on a normal day; the usual noise (a routine zone reload, wpad NXDOMAIN probes, a chronic certificate warning and an old core of an unrelated tool).")
