"""Healthy bundle: the stock and cart services of ``dns_typo`` and ``pool_exhaustion`` on a normal day.

The same real programs with the faults left out (no deploy; the feature flag stays off).  What stays is noise that looks alarming: benign NXDOMAINs all through
the capture (the NTP client's short name tried in the first search domain, proxy
auto-discovery), cart-api's warning at every start that its connection pool is smaller than
recommended, 404s, chronic warnings and two old cores of unrelated tools.  Two archives side by
side (a zip with a capture folder, a tar.gz).
"""

from __future__ import annotations

from pathlib import Path

import dns_typo
import pool_exhaustion
from kit import write_truth

NAME = "healthy-inventory"
CLASS = "healthy"
SEED = 1218


def build(out: Path) -> None:
    dns_typo.build(out, fault=False, name=NAME, seed=SEED)
    pool_exhaustion.build(out, fault=False, name=NAME, seed=SEED + 1)
    write_truth(out, NAME, description="No incident: the stock and cart services on a normal day; benign NXDOMAINs "
                                       "(search-list tries of a short name, proxy auto-discovery), a pool-size "
                                       "warning at every start of cart-api, 404s, chronic warnings and old cores "
                                       "of unrelated tools.")
