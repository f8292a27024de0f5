"""Formatting for the pages (Jinja filters): durations in business time, timestamps, clock labels.

>>> from datetime import timedelta
>>> duration(timedelta(hours=26, minutes=5))
'26 h 5 min'
>>> duration(timedelta(minutes=-90))
'1 h 30 min'
>>> clock_text(type("C", (), {"state": "breached", "remaining": timedelta(minutes=-45)})())
'breached 45 min ago (business time)'
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

CLOCK_NAMES = {"first_response": "First response", "update": "Update", "resolution": "Resolution"}
STATE_LABEL = {"running": "on track", "warning": "warning", "breached": "breached", "paused": "paused",
               "met": "met", "missed": "missed", "idle": "idle"}
SEVERITY_LABEL = {"S1": "S1 critical", "S2": "S2 high", "S3": "S3 medium", "S4": "S4 low"}


def duration(td: timedelta | None) -> str:
    if td is None:
        return "-"
    minutes = int(abs(td.total_seconds()) // 60)
    days, rest = divmod(minutes, 60 * 24) if minutes >= 60 * 24 * 3 else (0, minutes)
    hours, mins = divmod(rest, 60)
    parts = ([f"{days} d"] if days else []) + ([f"{hours} h"] if hours else []) + [f"{mins} min"]
    return " ".join(parts[:2]) if days else " ".join(parts)


def clock_text(clock: Any) -> str:
    """What a person reads on an SLA badge."""
    if clock is None:
        return "no SLA"
    state = clock.state
    if state in ("running", "warning"):
        return f"{duration(clock.remaining)} left (business time)"
    if state == "breached":
        return f"breached {duration(clock.remaining)} ago (business time)"
    if state == "paused":
        return f"paused, {duration(clock.remaining)} left"
    if state == "met":
        return "met"
    if state == "missed":
        return f"missed by {duration(clock.remaining)}"
    return "not running"


def when(ts: datetime | str | None) -> str:
    """UTC time as ``2026-12-07 11:42 UTC``."""
    if ts is None:
        return "-"
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts)
        except ValueError:
            return ts
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def iso(ts: datetime | None) -> str:
    return ts.astimezone(timezone.utc).isoformat(timespec="seconds") if ts else ""


def label(value: Any) -> str:
    """``waiting_customer`` -> ``waiting customer``."""
    text = getattr(value, "value", value)
    return str(text).replace("_", " ")


def size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def audit_change(entry: Any) -> str:
    """One line for an audit entry: the fields that changed, before -> after (long text cut).

    >>> audit_change(type("A", (), {"before": {"status": "new"}, "after": {"status": "investigating"}})())
    'status: new -> investigating'
    """
    before, after = entry.before or {}, entry.after or {}
    parts = []
    for k in list(dict.fromkeys([*before, *after]))[:6]:
        b, a = _short(before.get(k)), _short(after.get(k))
        if b == a:
            continue
        parts.append(f"{k}: {b} -> {a}" if k in before else f"{k}: {a}")
    return "; ".join(parts)


def _short(v: Any, n: int = 80) -> str:
    text = "-" if v is None else str(v)
    return text if len(text) <= n else text[: n - 1] + "\u2026"


FILTERS = {"audit_change": audit_change, "duration": duration, "clock_text": clock_text, "when": when, "iso": iso, "label": label, "size": size,
           "clock_name": lambda n: CLOCK_NAMES.get(n, n), "state_label": lambda s: STATE_LABEL.get(s, s),
           "severity_label": lambda s: SEVERITY_LABEL.get(getattr(s, "value", s), s)}
