"""SLA clocks that move on without recomputing the case's history: for queues and dashboards.

:func:`~backline.cases.sla.compute_clocks` walks a case's whole status history
through its business calendar, which for a case open for months is thousands of
calendar windows.  While nothing happens on a case, its clocks change in a way
known in advance: a running clock gains business time and reaches its warning
share at a fixed instant ``warn_at`` and its target at a fixed instant
``deadline``; a paused, idle or stopped clock stands still.  A
:class:`ClockPlan` is one clock computed once with those two instants, and
:meth:`ClockPlan.at` gives the clock at any later time with one short calendar
walk (from the time it was computed).  The result is the same ``Clock`` that
``compute_clocks`` gives (a test compares them on random histories).

:class:`ClockCache` keeps the plans of a process's cases under the case's
``updated_at`` and ``row_version``: every write that can change a clock (status,
notes, severity, policy, ...) changes one of them, so a stale plan is never used.

>>> from datetime import datetime, timezone, timedelta
>>> from backline.cases.model import CaseSeverity, CaseStatus
>>> from backline.cases.sla import ClockInput, SlaConfig, compute_clocks
>>> cfg = SlaConfig.default()
>>> t0 = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
>>> inp = ClockInput(CaseSeverity.S2, t0, [(t0, CaseStatus.NEW)], None, t0, None)
>>> plans = plan_clocks(inp, cfg, t0 + timedelta(hours=1))
>>> later = t0 + timedelta(days=3)
>>> [p.at(later) for p in plans] == list(compute_clocks(inp, cfg, later))
True
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import select

from backline.cases.calendar import BusinessCalendar
from backline.cases.model import CaseStatus
from backline.cases.sla import Clock, ClockInput, EscalationLevel, SlaConfig, compute_clocks
from backline.model.core import utc
from backline.storage import tables as T

_MOVING = ("running", "warning", "breached")


@dataclass(frozen=True, slots=True)
class ClockPlan:
    clock: Clock                        # the clock at ``t0``
    t0: datetime
    moving: bool                        # gains business time after t0 (its status is not paused or stopped)
    calendar: BusinessCalendar
    deadline: datetime | None           # when it breaches (or breached)
    warn_at: datetime | None            # when it reaches (or reached) the warning share
    levels: tuple[EscalationLevel, ...]

    def state_at(self, now: datetime) -> str:
        """Only the state at ``now`` (no calendar walk): what counting needs."""
        if not self.moving:
            return self.clock.state
        if self.deadline is not None and now >= self.deadline:
            return "breached"
        return "warning" if self.warn_at is not None and now >= self.warn_at else "running"

    def at(self, now: datetime) -> Clock:
        """The clock at ``now`` (``now`` >= ``t0``; the case unchanged since)."""
        c = self.clock
        if not self.moving:
            return c if c.state != "breached" else self._levels(c, now)
        elapsed = c.elapsed + self.calendar.business_time(self.t0, now)
        remaining = c.target - elapsed
        if self.deadline is not None and now >= self.deadline:
            state = "breached"
        elif self.warn_at is not None and now >= self.warn_at:
            state = "warning"
        else:
            state = "running"
        warned = self.warn_at if self.warn_at is not None and now >= self.warn_at else None
        out = replace(c, elapsed=elapsed, remaining=remaining, state=state, warned_at=warned,
                      escalation_level=0, notify=())
        return self._levels(out, now) if state == "breached" else out

    def _levels(self, c: Clock, now: datetime) -> Clock:
        assert self.deadline is not None
        reached = [lv for lv in self.levels if now - self.deadline >= lv.after_breach]
        if not reached:
            return replace(c, escalation_level=0, notify=())
        return replace(c, escalation_level=reached[-1].level, notify=tuple(dict.fromkeys(lv.notify for lv in reached)))


def plan_clocks(inp: ClockInput, config: SlaConfig, now: datetime) -> tuple[ClockPlan, ...]:
    """The case's three clocks at ``now`` as plans."""
    policy = config.policy(inp.policy)
    cal = config.calendar(inp.calendar or policy.calendar)
    current = max(inp.history, key=lambda h: h[0])[1] if inp.history else None
    paused = current in config.pause_statuses
    out = []
    for c in compute_clocks(inp, config, now):
        moving = c.state in _MOVING and c.stopped_at is None and not paused
        warn_at = c.warned_at
        if moving and warn_at is None:
            warn_at = cal.add(now, c.target * config.warning_share - c.elapsed)
        out.append(ClockPlan(c, now, moving, cal, c.deadline if c.state in _MOVING else None, warn_at,
                             policy.escalation_levels))
    return tuple(out)


class ClockCache:
    """Plans of a process's cases, under each case's ``(updated_at, row_version)``."""

    def __init__(self, cases, max_entries: int = 200_000):
        self.cases = cases
        self.max_entries = max_entries
        self._plans: dict[int, tuple[Any, int, tuple[ClockPlan, ...]]] = {}
        self._lock = threading.Lock()

    def plans(self, conn, keys: Sequence[tuple[int, Any, int]], now: datetime) -> dict[int, tuple[ClockPlan, ...]]:
        """``{case id: plans}`` for ``(id, updated_at, row_version)``; plans of changed cases are remade."""
        from backline.cases.service import _clock_input

        with self._lock:
            known = {k[0]: self._plans.get(k[0]) for k in keys}
        out: dict[int, tuple[ClockPlan, ...]] = {}
        stale: list[int] = []
        for cid, updated, version in keys:
            hit = known[cid]
            if hit is not None and hit[0] == updated and hit[1] == version and hit[2][0].t0 <= now:
                out[cid] = hit[2]
            else:
                stale.append(cid)
        fresh: dict[int, tuple[Any, int, tuple[ClockPlan, ...]]] = {}
        for chunk in _chunks(stale, 2000):
            rows = conn.execute(select(T.cases).where(T.cases.c.id.in_(chunk))).mappings().all()
            hist = _histories(conn, chunk)
            for r in rows:
                plans = plan_clocks(_clock_input(r, hist[r["id"]]), self.cases.sla, now)
                fresh[r["id"]] = (r["updated_at"], r["row_version"], plans)
                out[r["id"]] = plans
        if fresh:
            with self._lock:
                if len(self._plans) + len(fresh) > self.max_entries:
                    self._plans.clear()
                self._plans.update(fresh)
        return out

    def clocks(self, conn, keys: Sequence[tuple[int, Any, int]], now: datetime) -> dict[int, tuple[Clock, ...]]:
        return {cid: tuple(p.at(now) for p in plans) for cid, plans in self.plans(conn, keys, now).items()}


def _histories(conn, ids: list[int]) -> dict[int, list]:
    hist: dict[int, list] = defaultdict(list)
    H = T.status_history.c
    for chunk in _chunks(ids, 2000):
        for cid, at, st in conn.execute(select(H.case_id, H.at, H.to_status).where(H.case_id.in_(chunk))
                                        .order_by(H.id)):
            hist[cid].append((utc(at), CaseStatus(st)))
    return hist


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def due(plans: Sequence[ClockPlan]) -> datetime | None:
    """The earliest deadline of the running, warning or breached clocks (the case's SLA urgency)."""
    dates = [p.deadline for p in plans if p.deadline is not None]
    return min(dates) if dates else None


__all__ = ["ClockPlan", "ClockCache", "plan_clocks", "due"]
