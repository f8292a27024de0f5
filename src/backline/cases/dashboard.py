"""The managers' dashboard numbers, over the cases a user may see.

* open cases by severity and status (SQL counts);
* SLA clocks now: breached and in warning, per clock, with the most overdue cases;
* SLA breaches and warnings per day over the last 30 days (the moment each clock crossed its
  deadline or its warning share, from the clocks of every case open now or stopped within the
  window);
* time to first response and to resolution, median and 90th percentile per week of creation
  (wall-clock hours), over the last ``weeks`` weeks;
* load per engineer: open cases by owner and severity.

>>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.9), percentile([], 0.5)
(2.5, 3.7, None)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Sequence

from sqlalchemy import func, or_, select

from backline.cases.access import Action, require, visible_filter
from backline.cases.model import CaseSeverity, CaseStatus, User
from backline.cases.service import CaseService
from backline.cases.sla import CLOCKS
from backline.cases.sla_plan import ClockCache
from backline.model.core import utc
from backline.storage import tables as T

OPEN_VALUES = tuple(s.value for s in CaseStatus if s.is_open)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (as numpy's default), None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return round(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo), 2)


@dataclass(frozen=True, slots=True)
class WeekStat:
    week: date                     # Monday of the ISO week (UTC)
    cases: int
    ttfr_median_h: float | None
    ttfr_p90_h: float | None
    ttr_median_h: float | None
    ttr_p90_h: float | None


@dataclass(frozen=True, slots=True)
class Overdue:
    key: str
    title: str
    severity: str
    clock: str
    over: timedelta                # business time past the deadline
    owner: str | None


@dataclass(frozen=True, slots=True)
class Dashboard:
    generated_at: datetime
    open_total: int
    open_by_severity_status: dict[str, dict[str, int]]     # status -> severity -> count
    breached_now: dict[str, int]                           # clock -> cases
    warning_now: dict[str, int]
    overdue: tuple[Overdue, ...]
    days: tuple[date, ...]
    breaches_per_day: tuple[int, ...]
    warnings_per_day: tuple[int, ...]
    weeks: tuple[WeekStat, ...]
    load: dict[str, dict[str, int]]                        # owner ("(unassigned)") -> severity -> open cases


def dashboard(cases: CaseService, user: User, *, now: datetime | None = None, days: int = 30,
              weeks: int = 12, clock_cache: ClockCache | None = None) -> Dashboard:
    """The numbers at ``now``; ``clock_cache`` keeps the clocks of unchanged cases between calls."""
    require(user, Action.READ_REPORTS)
    clock_cache = clock_cache or ClockCache(cases)
    now = now or cases._now()
    c = T.cases.c
    vis = visible_filter(user)
    since = now - timedelta(days=days)
    owner_u = T.users.alias("owner_u")
    with cases.reader.connect() as conn:
        by_ss: dict[str, dict[str, int]] = {s: {v.value: 0 for v in CaseSeverity} for s in OPEN_VALUES}
        for st, sev, n in conn.execute(select(c.status, c.severity, func.count()).where(vis, c.status.in_(OPEN_VALUES))
                                       .group_by(c.status, c.severity)):
            by_ss[st][sev] = n
        # every case whose clocks can have crossed something in the window: open now, or stopped since
        live = conn.execute(select(c.id, c.key, c.title, c.severity, c.status, c.updated_at, c.row_version,
                                   owner_u.c.name.label("owner_name"))
                            .outerjoin(owner_u, owner_u.c.id == c.owner_id)
                            .where(vis, or_(c.status.in_(OPEN_VALUES), c.updated_at >= since))).mappings().all()
        all_plans = clock_cache.plans(conn, [(r["id"], r["updated_at"], r["row_version"]) for r in live], now)
        start_week = _monday(now.date()) - timedelta(weeks=weeks - 1)
        created = conn.execute(select(c.created_at, c.first_response_at, c.resolved_at)
                               .where(vis, c.created_at >= datetime.combine(start_week, datetime.min.time(),
                                                                            tzinfo=now.tzinfo))).all()
    breached, warning = Counter(), Counter()
    late: list = []
    day_list = tuple(since.date() + timedelta(days=i + 1) for i in range(days))
    index = {d: i for i, d in enumerate(day_list)}
    b_day, w_day = [0] * days, [0] * days
    load: dict[str, dict[str, int]] = defaultdict(lambda: {v.value: 0 for v in CaseSeverity})
    for r in live:
        is_open = r["status"] in OPEN_VALUES
        if is_open:
            load[r["owner_name"] or "(unassigned)"][r["severity"]] += 1
        for p in all_plans[r["id"]]:
            state = p.state_at(now)
            name = p.clock.name
            if is_open and state == "breached":
                breached[name] += 1
                late.append((p.clock.deadline, p, r))
            elif is_open and state == "warning":
                warning[name] += 1
            if state in ("breached", "missed") and p.clock.deadline is not None:
                i = index.get(p.clock.deadline.date())
                if i is not None and p.clock.deadline <= now:
                    b_day[i] += 1
            warned = p.warn_at if p.moving else p.clock.warned_at
            if warned is not None and warned <= now:
                i = index.get(warned.date())
                if i is not None:
                    w_day[i] += 1
    late.sort(key=lambda x: x[0])           # the longest overdue first (the business time over, for those)
    overdue = [Overdue(r["key"], r["title"], r["severity"], p.clock.name, -p.at(now).remaining, r["owner_name"])
               for _d, p, r in late[:15]]
    per_week: dict[date, list] = defaultdict(lambda: [0, [], []])
    for created_at, first, resolved in created:
        created_at = utc(created_at)
        w = per_week[_monday(created_at.date())]
        w[0] += 1
        if first is not None:
            w[1].append((utc(first) - created_at).total_seconds() / 3600)
        if resolved is not None:
            w[2].append((utc(resolved) - created_at).total_seconds() / 3600)
    week_stats = []
    for i in range(weeks):
        wk = start_week + timedelta(weeks=i)
        n, fr, rs = per_week.get(wk, (0, [], []))
        week_stats.append(WeekStat(wk, n, percentile(fr, 0.5), percentile(fr, 0.9), percentile(rs, 0.5),
                                   percentile(rs, 0.9)))
    overdue.sort(key=lambda o: -o.over)
    return Dashboard(now, sum(sum(v.values()) for v in by_ss.values()), by_ss,
                     {k: breached.get(k, 0) for k in CLOCKS}, {k: warning.get(k, 0) for k in CLOCKS},
                     tuple(overdue[:15]), day_list, tuple(b_day), tuple(w_day), tuple(week_stats),
                     dict(sorted(load.items(), key=lambda kv: -sum(kv[1].values()))))


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())
