"""SLA clocks: first response, update, resolution.

Semantics follow Zammad's escalation model:

* **first response** runs from creation until the first *public* note written
  by staff (internal notes never count as contact);
* **update** runs while the customer waits on us: from the customer's last
  contact (creation counts as one) until staff answer publicly;
* **resolution** runs from creation until the case reaches a stop status
  (resolved/closed).

Clocks count only business time of the case's calendar, and stand still in
pause statuses (``waiting_customer`` and any configured others); paused time
is added back to the deadline.  Everything is recomputed from the case's
history on every read, so a change of severity, policy, calendar or status
takes effect at once.  The time is always passed in (no hidden clock).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from backline.cases.calendar import BusinessCalendar, Interval, intersect, walk
from backline.cases.model import CaseSeverity, CaseStatus
from backline.errors import UsageError

CLOCKS = ("first_response", "update", "resolution")


@dataclass(frozen=True, slots=True)
class EscalationLevel:
    level: int
    after_breach: timedelta
    notify: str                        # "owner" | "manager" | a participant role


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    name: str
    calendar: str
    targets: Mapping[CaseSeverity, Mapping[str, timedelta]]
    escalation_levels: tuple[EscalationLevel, ...]


@dataclass(frozen=True, slots=True)
class SlaConfig:
    """Policies, calendars and the shared knobs; loaded from JSON data."""

    policies: Mapping[str, SlaPolicy]
    calendars: Mapping[str, BusinessCalendar]
    warning_share: float = 0.75
    pause_statuses: frozenset[CaseStatus] = frozenset({CaseStatus.WAITING_CUSTOMER})
    stop_statuses: frozenset[CaseStatus] = frozenset({CaseStatus.RESOLVED, CaseStatus.CLOSED})

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "sla policies") -> "SlaConfig":
        try:
            calendars = {n: BusinessCalendar.from_json(n, s) for n, s in data["calendars"].items()}
            policies = {}
            for name, spec in data["policies"].items():
                targets = {CaseSeverity.parse(sev): {c: timedelta(minutes=float(t[c])) for c in CLOCKS}
                           for sev, t in spec["targets"].items()}
                if set(targets) != set(CaseSeverity):
                    raise ValueError(f"policy {name} must give targets for S1..S4")
                levels = tuple(sorted((EscalationLevel(int(lv["level"]),
                                                       timedelta(minutes=float(lv.get("after_breach_minutes", 0))),
                                                       str(lv["notify"]))
                                       for lv in spec.get("escalation_levels", ())), key=lambda e: e.level))
                cal = spec.get("calendar", "24x7")
                if cal not in calendars and cal != "24x7":
                    raise ValueError(f"policy {name} names unknown calendar {cal!r}")
                policies[name] = SlaPolicy(name, cal, targets, levels)
            share = float(data.get("warning_share", 0.75))
            if not 0 < share < 1:
                raise ValueError("warning_share must be between 0 and 1")
            pause = frozenset(CaseStatus.parse(s) for s in data.get("pause_statuses", ["waiting_customer"]))
            stop = frozenset(CaseStatus.parse(s) for s in data.get("stop_statuses", ["resolved", "closed"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(f"malformed SLA configuration: {exc}", artifact=source) from None
        if "default" not in policies:
            raise UsageError("SLA configuration needs a 'default' policy", artifact=source)
        calendars.setdefault("24x7", BusinessCalendar.always())
        return cls(policies, calendars, share, pause, stop)

    @classmethod
    def load(cls, path: Path) -> "SlaConfig":
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read SLA configuration: {exc}", artifact=str(path)) from None

    @classmethod
    def default(cls) -> "SlaConfig":
        text = resources.files("backline.cases").joinpath("data/sla_policies.json").read_text("utf-8")
        return cls.from_json(json.loads(text), "sla_policies.json")

    def policy(self, name: str) -> SlaPolicy:
        if name not in self.policies:
            raise UsageError(f"unknown SLA policy {name!r}; known: {', '.join(sorted(self.policies))}")
        return self.policies[name]

    def calendar(self, name: str) -> BusinessCalendar:
        if name not in self.calendars:
            raise UsageError(f"unknown calendar {name!r}; known: {', '.join(sorted(self.calendars))}")
        return self.calendars[name]


@dataclass(frozen=True, slots=True)
class ClockInput:
    """What a case's clocks are computed from."""

    severity: CaseSeverity
    created_at: datetime
    history: Sequence[tuple[datetime, CaseStatus]]      # (when, new status), from creation on
    first_response_at: datetime | None
    last_customer_contact_at: datetime | None
    last_staff_contact_at: datetime | None
    policy: str = "default"
    calendar: str | None = None                          # overrides the policy's calendar


@dataclass(frozen=True, slots=True)
class Clock:
    """One SLA clock as shown to people.

    ``state`` is one of ``running``, ``warning``, ``breached``, ``paused``,
    ``met``, ``missed`` (stopped after its deadline) and ``idle`` (the update
    clock when nobody is waiting on us).
    """

    name: str
    target: timedelta
    started_at: datetime | None
    stopped_at: datetime | None
    elapsed: timedelta
    remaining: timedelta
    deadline: datetime | None
    state: str
    escalation_level: int = 0
    notify: tuple[str, ...] = ()
    warned_at: datetime | None = None      # when it reached the warning share of its target (if it did)

    def to_json(self) -> dict[str, Any]:
        return {"clock": self.name, "target_minutes": self.target.total_seconds() / 60,
                "started_at": _iso(self.started_at), "stopped_at": _iso(self.stopped_at),
                "elapsed_minutes": round(self.elapsed.total_seconds() / 60, 2),
                "remaining_minutes": round(self.remaining.total_seconds() / 60, 2),
                "deadline": _iso(self.deadline), "state": self.state,
                "escalation_level": self.escalation_level, "notify": list(self.notify)}


def compute_clocks(inp: ClockInput, config: SlaConfig, now: datetime) -> tuple[Clock, ...]:
    """All three clocks of one case at ``now``."""
    policy = config.policy(inp.policy)
    cal = config.calendar(inp.calendar or policy.calendar)
    targets = policy.targets[inp.severity]
    segments = _segments(inp, now)
    active = [(a, b) for a, b, st in segments if st not in config.pause_statuses and st not in config.stop_statuses]
    current = segments[-1][2] if segments else CaseStatus.NEW
    stopped_at: datetime | None = None
    for a, _b, st in reversed(segments):      # start of the trailing run of stop statuses
        if st not in config.stop_statuses:
            break
        stopped_at = a
    paused = current in config.pause_statuses

    def clock(name: str, start: datetime | None, stop: datetime | None) -> Clock:
        target = targets[name]
        if start is None:
            return Clock(name, target, None, None, timedelta(), target, None, "idle")
        end = min(stop, now) if stop is not None else now
        run = [(max(a, start), min(b, end)) for a, b in active if b > start and a < end]
        run = [(a, b) for a, b in run if a < b]
        elapsed = sum((b - a for a, b in intersect(run, cal.windows(start, end))), timedelta())
        remaining = target - elapsed
        breach_at: datetime | None = None
        if remaining <= timedelta():
            breach_at = walk(intersect(run, cal.windows(start, end)), target, cal.name)
        warned_at: datetime | None = None
        if elapsed >= target * config.warning_share and target > timedelta():
            warned_at = walk(intersect(run, cal.windows(start, end)), target * config.warning_share, cal.name)
        if stop is not None:
            state = "met" if remaining >= timedelta() else "missed"
            return Clock(name, target, start, stop, elapsed, remaining, breach_at or None, state, warned_at=warned_at)
        if breach_at is not None:
            deadline = breach_at
        elif paused:
            deadline = None
        else:
            deadline = cal.add(now, remaining)
        if breach_at is not None:
            state = "breached"
        elif paused:
            state = "paused"
        elif elapsed >= target * config.warning_share:
            state = "warning"
        else:
            state = "running"
        level, notify = 0, ()
        if breach_at is not None:
            over = now - breach_at
            reached = [lv for lv in policy.escalation_levels if over >= lv.after_breach]
            if reached:
                level = reached[-1].level
                notify = tuple(dict.fromkeys(lv.notify for lv in reached))
        return Clock(name, target, start, None, elapsed, remaining, deadline, state, level, notify, warned_at)

    fr_stop = inp.first_response_at or stopped_at
    out = [clock("first_response", inp.created_at, fr_stop)]
    waiting_since = inp.last_customer_contact_at
    if waiting_since is not None and (inp.last_staff_contact_at is None
                                      or inp.last_staff_contact_at < waiting_since):
        out.append(clock("update", waiting_since, stopped_at))
    else:
        out.append(clock("update", None, None))
    out.append(clock("resolution", inp.created_at, stopped_at))
    return tuple(out)


def _segments(inp: ClockInput, now: datetime) -> list[tuple[datetime, datetime, CaseStatus]]:
    """The status history as ``(from, to, status)`` spans ending at ``now``."""
    hist = sorted(inp.history, key=lambda h: h[0])
    out: list[tuple[datetime, datetime, CaseStatus]] = []
    for i, (at, st) in enumerate(hist):
        end = hist[i + 1][0] if i + 1 < len(hist) else max(now, at)
        out.append((at, end, st))
    return out


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


def summarise(clocks: Sequence[Clock]) -> Iterator[str]:
    """One line per clock, for the CLI."""
    for c in clocks:
        dl = c.deadline.isoformat(timespec="minutes") if c.deadline else "-"
        yield (f"{c.name:<15} {c.state:<9} deadline {dl}  remaining "
               f"{c.remaining.total_seconds() / 60:,.0f} min  level {c.escalation_level}")


__all__ = ["SlaConfig", "SlaPolicy", "ClockInput", "Clock", "compute_clocks", "EscalationLevel",
           "CLOCKS", "Interval", "summarise"]
