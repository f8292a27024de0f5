"""A task's events in a compact form for pickling (between a task process and the runner,
and between a Dask worker and the client).

A task of ``logs.text`` returns up to 20,000 events; pickled one object at a time (a
frozen slotted dataclass with a datetime, two enums and an :class:`EvidenceRef` each)
they cost about 0.45 CPU s per task to pickle and unpickle, a third of what analysing a
10 MB log costs.  Packed in columns - repeated strings once, UTC times as integer
microseconds - the same events cost about 0.13 s and come back equal, field for field.
Anything unusual (a subclass, a time zone other than UTC) is kept as it is.

>>> from datetime import datetime, timezone
>>> from backline.model import Event, EvidenceRef, Severity
>>> ev = [Event(datetime(2026, 1, 1, 0, 0, 0, 8000, tzinfo=timezone.utc), "a.log", "log.error", "boom",
...             Severity.HIGH, EvidenceRef.line("a.log", 5, "ERROR boom"), analyzer="logs.text"),
...       Event(None, "a.log", "log.note", "no time")]
>>> unpack_events(pack_events(ev)) == ev
True
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Sequence

from backline.model import Event, EvidenceRef, Severity
from backline.model.core import TsQuality

_UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_US = timedelta(microseconds=1)
_SEVERITY = {int(s): s for s in Severity}
_QUALITY = {q.value: q for q in TsQuality}
_VERSION = 1


def pack_events(events: Sequence[Event]):
    """``events`` as a tuple of columns (or the list itself when some are not plain events)."""
    strings: dict[str, int] = {}

    def index(text: str) -> int:
        i = strings.get(text)
        if i is None:
            i = strings[text] = len(strings)
        return i

    times: list[int | None] = []
    small: list[tuple[int, int, int, int, int, int]] = []
    summaries: list[str] = []
    locators: list[str | None] = []
    excerpts: list[str | None] = []
    odd_times: dict[int, datetime] = {}
    for n, e in enumerate(events):
        if type(e) is not Event or (e.ref is not None and type(e.ref) is not EvidenceRef) \
                or type(e.severity) is not Severity or type(e.ts_quality) is not TsQuality:
            return list(events)
        t = e.ts
        if t is not None and t.tzinfo is _UTC:
            times.append((t - _EPOCH) // _US)
        else:
            times.append(None)
            if t is not None:
                odd_times[n] = t
        r = e.ref
        small.append((index(e.artifact), index(e.kind), int(e.severity), index(e.ts_quality.value),
                      index(e.analyzer), -1 if r is None else index(r.artifact)))
        summaries.append(e.summary)
        locators.append(None if r is None else r.locator)
        excerpts.append(None if r is None else r.excerpt)
    return (_VERSION, list(strings), times, small, summaries, locators, excerpts, odd_times)


def unpack_events(packed) -> list[Event]:
    """The events :func:`pack_events` packed."""
    if isinstance(packed, list):
        return packed
    version, strings, times, small, summaries, locators, excerpts, odd_times = packed
    if version != _VERSION:
        raise ValueError(f"events packed in version {version}, this is {_VERSION}")
    out: list[Event] = []
    append = out.append
    for n, (art, kind, sev, quality, analyzer, ref_art) in enumerate(small):
        t = times[n]
        ts = _EPOCH + _US * t if t is not None else odd_times.get(n)
        ref = None if ref_art < 0 else EvidenceRef(strings[ref_art], locators[n], excerpts[n])
        append(Event(ts, strings[art], strings[kind], summaries[n], _SEVERITY[sev], ref,
                     _QUALITY[strings[quality]], strings[analyzer]))
    return out
