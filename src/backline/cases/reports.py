"""The summary report: open cases by severity, SLA breaches, medians, intake returns.

>>> median_minutes([])
>>> median_minutes([60.0, 120.0, 30.0])
60.0
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import select

from backline.cases.access import Action, require, visible_filter
from backline.cases.model import CaseSeverity, CaseStatus, User
from backline.cases.service import CaseService, _clock_input
from backline.cases.sla import compute_clocks
from backline.model.core import utc
from backline.storage import tables as T


def median_minutes(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def summary(cases: CaseService, user: User, *, now: datetime | None = None) -> dict[str, Any]:
    """Numbers over every case ``user`` can see."""
    require(user, Action.READ_REPORTS)
    now = now or cases._now()
    with cases.engine.connect() as conn:
        rows = conn.execute(select(T.cases).where(visible_filter(user))).mappings().all()
        ids = [r["id"] for r in rows]
        hist: dict[int, list] = defaultdict(list)
        if ids:
            for cid, at, st in conn.execute(select(T.status_history.c.case_id, T.status_history.c.at,
                                                   T.status_history.c.to_status)
                                            .order_by(T.status_history.c.id)):
                hist[cid].append((utc(at), CaseStatus(st)))
    open_by_sev = {s.value: 0 for s in CaseSeverity}
    breaches = {"first_response": 0, "update": 0, "resolution": 0}
    breached_cases: list[str] = []
    ttfr, ttr = [], []
    returned = 0
    for r in rows:
        status = CaseStatus(r["status"])
        if status.is_open:
            open_by_sev[r["severity"]] += 1
        created = utc(r["created_at"])
        if r["first_response_at"] is not None:
            ttfr.append((utc(r["first_response_at"]) - created).total_seconds() / 60)
        if r["resolved_at"] is not None:
            ttr.append((utc(r["resolved_at"]) - created).total_seconds() / 60)
        returned += bool(r["returned_for_info"])
        clocks = compute_clocks(_clock_input(r, hist[r["id"]]), cases.sla, now)
        hit = [c.name for c in clocks if c.state in ("breached", "missed")]
        for name in hit:
            breaches[name] += 1
        if hit:
            breached_cases.append(r["key"])
    total = len(rows)
    return {
        "generated_at": now.isoformat(),
        "cases": total,
        "open_by_severity": open_by_sev,
        "sla_breaches": {**breaches, "cases": len(breached_cases), "keys": breached_cases[:100]},
        "median_minutes_to_first_response": median_minutes(ttfr),
        "median_minutes_to_resolution": median_minutes(ttr),
        "returned_for_information_share": round(returned / total, 4) if total else None,
    }
