"""The case queue: the cases a user may see, filtered, sorted by SLA urgency, one page at a time.

Urgency is the earliest SLA deadline of a case's running, warning or breached
clocks (a breached clock's deadline lies in the past, so breaches come first);
cases whose clocks are all paused, idle or stopped follow, oldest first.  A
deadline does not move while nothing happens on the case (the clock runs on in
business time towards the same instant), so the clocks are kept as plans
(:mod:`backline.cases.sla_plan`) per process under the case's ``updated_at`` and
``row_version``, which every write changes: a queue of thousands of open cases
is sorted without recomputing every clock, and the clocks shown (state,
business time left) are exact at the time of the request.

>>> QueueFilters.from_query({"status": ["open"], "q": [" db "]}).text
'db'
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Mapping, Sequence

from sqlalchemy import and_, false, func, or_, select

from backline.cases.access import Action, require, visible_filter
from backline.cases.model import CaseSeverity, CaseStatus, User
from backline.cases.service import CaseService
from backline.cases.sla import Clock
from backline.cases.sla_plan import ClockCache, due
from backline.errors import CaseError
from backline.model.core import utc
from backline.storage import tables as T

PER_PAGE = 25
CHOICES_SECONDS = 60.0
OPEN = tuple(s for s in CaseStatus if s.is_open)
SORTS = {"urgency": "SLA urgency", "updated": "recently updated", "severity": "severity", "key": "newest"}
_URGENT_STATES = ("breached", "warning", "running")


@dataclass(frozen=True, slots=True)
class QueueFilters:
    """What the queue shows.  ``status`` may hold ``open`` (every open status) and ``all``."""

    status: tuple[str, ...] = ("open",)
    severity: tuple[str, ...] = ()
    owner: str | None = None
    product: str | None = None
    org: str | None = None
    text: str | None = None
    sort: str = "urgency"
    page: int = 1

    @classmethod
    def from_query(cls, q: Mapping[str, Sequence[str]]) -> "QueueFilters":
        def one(name: str) -> str | None:
            vals = [v.strip() for v in q.get(name, ()) if v and v.strip()]
            return vals[0][:200] if vals else None

        status = tuple(v for v in q.get("status", ()) if v) or ("open",)
        for s in status:
            if s not in ("open", "all"):
                CaseStatus.parse(s)
        severity = tuple(CaseSeverity.parse(v).value for v in q.get("severity", ()) if v)
        sort = one("sort") or "urgency"
        if sort not in SORTS:
            raise CaseError(f"unknown sort {sort!r}; use one of {', '.join(SORTS)}")
        try:
            page = max(1, min(int(one("page") or 1), 100_000))
        except ValueError:
            raise CaseError("page must be a number") from None
        return cls(status, severity, one("owner"), one("product"), one("org"), one("q"), sort, page)

    def statuses(self) -> tuple[str, ...] | None:
        """The status values to keep, or None for all."""
        if "all" in self.status:
            return None
        out: list[str] = []
        for s in self.status:
            out.extend(x.value for x in OPEN) if s == "open" else out.append(CaseStatus.parse(s).value)
        return tuple(dict.fromkeys(out))


@dataclass(frozen=True, slots=True)
class QueueRow:
    key: str
    title: str
    product: str
    org: str
    severity: CaseSeverity
    status: CaseStatus
    owner: str | None
    updated_at: datetime
    clocks: tuple[Clock, ...]

    @property
    def urgent(self) -> Clock | None:
        """The clock to show on the badge: the most pressing running one, else the resolution clock."""
        live = [c for c in self.clocks if c.state in _URGENT_STATES]
        if live:
            return min(live, key=lambda c: (_URGENT_STATES.index(c.state), c.remaining))
        return next((c for c in self.clocks if c.name == "resolution"), None)


@dataclass(frozen=True, slots=True)
class QueuePage:
    rows: tuple[QueueRow, ...]
    total: int
    page: int
    pages: int
    filters: QueueFilters


class CaseQueue:
    """The queue over a :class:`CaseService` (same permission rule and clocks)."""

    def __init__(self, cases: CaseService, per_page: int = PER_PAGE, clocks: ClockCache | None = None):
        self.cases = cases
        self.per_page = per_page
        self.clocks = clocks or ClockCache(cases)
        self._choices: dict[tuple, tuple[float, dict[str, list[str]]]] = {}

    def _where(self, user: User, f: QueueFilters, owner_u):
        c = T.cases.c
        cond = [visible_filter(user)]
        statuses = f.statuses()
        if statuses is not None:
            cond.append(c.status.in_(statuses))
        if f.severity:
            cond.append(c.severity.in_(f.severity))
        if f.owner:
            cond.append(owner_u.c.name == f.owner if f.owner != "-" else c.owner_id.is_(None))
        if f.product:
            cond.append(c.product == f.product)
        if f.org:
            cond.append(c.org == f.org)
        if f.text:
            needle = f.text.lower()
            cond.append(or_(func.lower(c.title).contains(needle, autoescape=True),
                            func.lower(c.key).contains(needle, autoescape=True)))
        return and_(*cond)

    def page(self, user: User, f: QueueFilters, *, now: datetime | None = None) -> QueuePage:
        require(user, Action.READ_CASE)
        now = now or self.cases._now()
        owner_u = T.users.alias("owner_u")
        c = T.cases.c
        where = self._where(user, f, owner_u)
        base = select(c.id, c.updated_at, c.row_version, c.created_at).select_from(
            T.cases.outerjoin(owner_u, owner_u.c.id == c.owner_id)).where(where)
        with self.cases.reader.connect() as conn:
            if f.sort == "urgency":
                ids = conn.execute(base).all()
                plans = self.clocks.plans(conn, [(r.id, r.updated_at, r.row_version) for r in ids], now)
                dues = {cid: due(p) for cid, p in plans.items()}
                order = [r.id for r in sorted(ids, key=lambda r: (0, dues[r.id], r.id) if dues[r.id] is not None
                                              else (1, utc(r.created_at), r.id))]
                total = len(order)
                start = (f.page - 1) * self.per_page
                page_ids = order[start:start + self.per_page]
            else:
                total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
                key_cols = {"updated": (c.updated_at.desc(), c.id.desc()), "key": (c.id.desc(),),
                            "severity": (c.severity, c.id.desc())}[f.sort]
                page_ids = [r.id for r in conn.execute(base.order_by(*key_cols).limit(self.per_page)
                                                       .offset((f.page - 1) * self.per_page))]
            rows = self._rows(conn, page_ids, now)
        pages = max(1, math.ceil(total / self.per_page))
        return QueuePage(tuple(rows), total, f.page, pages, f)

    def warm(self) -> int:
        """Make the clock plans of every open case now (a server does this once at start, in a
        thread, so the first queue and dashboard requests need not).  Returns how many."""
        c = T.cases.c
        now = self.cases._now()
        with self.cases.reader.connect() as conn:
            keys = [(r.id, r.updated_at, r.row_version) for r in conn.execute(
                select(c.id, c.updated_at, c.row_version).where(c.status.in_([s.value for s in OPEN])))]
            self.clocks.plans(conn, keys, now)
        return len(keys)

    def _rows(self, conn, ids: list[int], now: datetime) -> list[QueueRow]:
        if not ids:
            return []
        owner_u = T.users.alias("owner_u")
        rows = {r["id"]: r for r in conn.execute(
            select(T.cases, owner_u.c.name.label("owner_name"))
            .outerjoin(owner_u, owner_u.c.id == T.cases.c.owner_id).where(T.cases.c.id.in_(ids))).mappings()}
        clocks = self.clocks.clocks(conn, [(i, rows[i]["updated_at"], rows[i]["row_version"]) for i in ids], now)
        return [QueueRow(r["key"], r["title"], r["product"], r["org"], CaseSeverity(r["severity"]),
                         CaseStatus(r["status"]), r["owner_name"], utc(r["updated_at"]), clocks[i])
                for i in ids for r in (rows[i],)]

    def choices(self, user: User) -> dict[str, list[str]]:
        """Values for the filter menus: products, organisations and owners of visible cases
        (remembered for a minute per kind of viewer: they are menu entries, not data)."""
        who = (user.role.value, user.org, user.team, user.id if user.role.value == "support" else None)
        hit = self._choices.get(who)
        if hit is not None and time.monotonic() - hit[0] < CHOICES_SECONDS:
            return hit[1]
        out = self._load_choices(user)
        if len(self._choices) > 10_000:
            self._choices.clear()
        self._choices[who] = (time.monotonic(), out)
        return out

    def _load_choices(self, user: User) -> dict[str, list[str]]:
        c = T.cases.c
        with self.cases.reader.connect() as conn:
            vis = visible_filter(user)
            products = [p for (p,) in conn.execute(select(c.product).where(vis).distinct().order_by(c.product)
                                                   .limit(200))]
            orgs = [o for (o,) in conn.execute(select(c.org).where(vis).distinct().order_by(c.org).limit(200))]
            owners = [n for (n,) in conn.execute(
                select(T.users.c.name).where(T.users.c.role.in_(("engineer", "developer", "manager", "admin")),
                                             T.users.c.active.is_(True) if user.role.is_staff else false())
                .order_by(T.users.c.name).limit(200))]
        return {"products": products, "orgs": orgs, "owners": owners}
