"""Helpers shared by the text crash parsers: signatures and limits.

>>> from backline.analyzers.dumps.model import CrashException, StackFrame
>>> e = CrashException("KeyError", frames=(StackFrame(0, "text", function="load"),))
>>> text_signature(e)
'KeyError | load'
"""

from __future__ import annotations

import re
from dataclasses import replace

from backline.analyzers.dumps.model import CrashException, CrashReport, StackFrame

MAX_LINE = 10_000          # characters of one line that are looked at
MAX_FRAMES = 5_000         # frames kept per exception / thread
MAX_REPORTS = 1_000        # reports per text
SIGNATURE_FRAMES = 3


def short_type(name: str) -> str:
    return name.strip()


def text_signature(exc: CrashException | None, frames: tuple[StackFrame, ...] = ()) -> str | None:
    """``<exception type> | <top frame> | <next> | <next>`` (innermost frames first).

    The frames are the exception's own when it has any, else ``frames``.
    """
    if exc is None and not frames:
        return None
    own = exc.frames if exc is not None and exc.frames else frames
    parts = [exc.type] if exc is not None else []
    for f in own[:SIGNATURE_FRAMES]:
        parts.append(f.function or f.display())
    return " | ".join(parts)


def renumber(frames: list[StackFrame]) -> tuple[StackFrame, ...]:
    return tuple(replace(f, index=i) for i, f in enumerate(frames[:MAX_FRAMES]))


def finish(report: CrashReport) -> CrashReport:
    """Fill the signature (and blamed frame 0) of a text report."""
    frames: tuple[StackFrame, ...] = ()
    t = report.crashed_thread
    if t is not None:
        frames = t.frames
    sig = text_signature(report.exception, frames)
    return replace(report, signature=sig, blamed_frame=0 if frames else None)


#: Unambiguous time zone abbreviations printed by JVMs (hours east of UTC). CST and IST are
#: left out on purpose: each names two zones.
TZ_ABBREVIATIONS = {
    "UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8,
    "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2, "WET": 0,
    "WEST": 1, "EET": 2, "EEST": 3, "BST": 1, "MSK": 3, "JST": 9, "KST": 9, "SGT": 8, "HKT": 8,
    "AEST": 10, "AEDT": 11, "ACST": 9.5, "AWST": 8, "NZST": 12, "NZDT": 13,
}


def parse_text_time(text: str, zone: str | None, default_tz) -> tuple["datetime | None", bool]:
    """A JVM/jstack wall-clock time (``Tue Oct 13 17:05:20 2020``, ``2026-11-27 09:32:04``) with
    its zone (``EDT``, ``+08``, ``+0530``) as an aware UTC datetime.

    Returns ``(datetime, exact)``; ``exact`` is False when the zone was missing or ambiguous and
    ``default_tz`` was used.

    >>> from zoneinfo import ZoneInfo
    >>> parse_text_time("Tue Oct 13 17:05:20 2020", "EDT", ZoneInfo("UTC"))
    (datetime.datetime(2020, 10, 13, 21, 5, 20, tzinfo=datetime.timezone.utc), True)
    """
    from datetime import datetime, timedelta, timezone

    text = " ".join(text.split())
    stamp = None
    for fmt in ("%a %b %d %H:%M:%S %Y", "%Y-%m-%d %H:%M:%S", "%b %d %H:%M:%S %Y"):
        try:
            stamp = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if stamp is None:
        return None, False
    offset = None
    if zone:
        z = zone.strip()
        m = re.match(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$", z)
        if m:
            offset = (1 if m[1] == "+" else -1) * (int(m[2]) * 60 + int(m[3] or 0))
        elif z.upper() in TZ_ABBREVIATIONS:
            offset = int(TZ_ABBREVIATIONS[z.upper()] * 60)
    if offset is not None:
        return (stamp.replace(tzinfo=timezone(timedelta(minutes=offset))).astimezone(timezone.utc), True)
    return stamp.replace(tzinfo=default_tz).astimezone(timezone.utc), False
