"""Time: clock skew between artifacts, and the incident window.

**Skew.**  Two artifacts often record the same happening: the log line "connection
to 10.0.0.5:5432 refused" and the RST in the capture.  For every pair of
artifacts and every specific entity (endpoint, host, pid, process) both name in
their events, the first events naming it are paired, and so are the last (a
capture's timeline holds only the first and last packet of each finding, a log
every record); the median of those time differences within ``max_skew`` is the
second artifact's clock offset, when at least ``min_pairs`` of them agree within
``max_spread_s``.  Offsets are chained from a reference artifact (the one paired with the
most others, captures first: their clock is the kernel's), and an offset below
``min_skew`` is taken as none.

**Incident window.**  Problem events (warning and worse) are counted in buckets;
each artifact's own everyday rate (its median bucket over its active span) is
subtracted, so a warning that repeats all day adds nothing; problems in a capture
weigh more (captures are taken while the problem happens); the bucket with the
largest excess together with its two neighbours (the later one on a tie: evidence
is collected after the incident), widened while its neighbours keep a fifth of its
own, is the incident.

>>> from datetime import datetime, timedelta, timezone
>>> from backline.model import Event, Severity
>>> t0 = datetime(2024, 5, 1, 14, 2, tzinfo=timezone.utc)
>>> ev = [Event(t0 + timedelta(seconds=5), "app.log", "log.error", "refused 10.0.0.5:5432", Severity.HIGH),
...       Event(t0, "net.pcap", "net.tcp.rst_to_syn", "refused by 10.0.0.5:5432", Severity.HIGH)]
>>> [(s.artifact, s.offset_s) for s in estimate_skews(ev)]
[('app.log', 5.0)]
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from statistics import median
from typing import Mapping, Sequence

from backline.knowledge.diagnosis.entities import (SKEW_KINDS, Entity, Vocabulary, skew_entities_many,
                                                   vocabulary_hosts)
from backline.model import ClockSkew, Event, Severity

__all__ = ["SKEW_KINDS", "SkewDigest", "TimingSettings", "estimate_skews", "skew_digests"]

#: Events read at a time per artifact (their texts joined for one pass of each pattern).
_CHUNK = 2048


@dataclass(frozen=True, slots=True)
class TimingSettings:
    max_skew: timedelta = timedelta(hours=14)   # a log written in local time is hours off the capture's UTC
    min_skew_s: float = 0.5
    min_pairs: int = 2                # time differences needed to believe an offset
    max_spread_s: float = 1.0         # ... and how far they may disagree (median absolute deviation)
    max_events: int = 4000            # per artifact, the first ones read (bounded work on huge bundles)
    bucket_s: int = 10
    min_baseline_buckets: int = 12   # an artifact active this long has an everyday rate to subtract
    capture_weight: float = 1.5
    min_severity: Severity = Severity.MEDIUM


def _event_text(e: Event) -> str:
    text = e.summary
    if e.ref is not None and e.ref.excerpt and e.ref.excerpt not in text:
        text = e.ref.excerpt if text in e.ref.excerpt else f"{text}\n{e.ref.excerpt}"
    return text


@dataclass(frozen=True, slots=True)
class SkewDigest:
    """What the skew estimate reads of one artifact's events, found where the artifact was
    analysed (a task process, a cluster worker) so that the machine making the report does not
    run the entity patterns over them: for every entity the fixed patterns find in the
    artifact's first ``max_events`` dated problem events (in time order), the first and last
    of their times (seconds since the epoch).  The names learned from the whole evidence (the
    vocabulary) are looked for later, in the same events (:func:`estimate_skews`).
    ``max_events`` and ``min_severity`` are the settings it was made with."""

    spans: tuple[tuple[Entity, float, float], ...]
    max_events: int
    min_severity: int


def _chosen(events: Sequence[Event], s: TimingSettings) -> list[Event]:
    """The events of one artifact the skew estimate reads: the first ``max_events`` dated
    problem events in time order (a stable sort: ties keep the events' order)."""
    dated = [e for e in events if e.ts is not None and e.severity >= s.min_severity]
    dated.sort(key=lambda e: e.ts)
    return dated[:s.max_events]


def skew_digests(events: Sequence[Event], settings: TimingSettings | None = None) -> dict[str, SkewDigest]:
    """A :class:`SkewDigest` of each artifact of ``events`` (all the events of those artifacts:
    :func:`estimate_skews` takes a digest for an artifact only from the one place that
    produced all its events)."""
    s = settings or TimingSettings()
    by_art: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by_art[e.artifact].append(e)
    out = {}
    for art, evs in by_art.items():
        chosen = _chosen(evs, s)
        spans: dict[Entity, list[float]] = {}
        for at in range(0, len(chosen), _CHUNK):
            batch = chosen[at:at + _CHUNK]
            for e, ents in zip(batch, skew_entities_many([_event_text(e) for e in batch])):
                if ents:
                    t = e.ts.timestamp()
                    for x in ents:
                        _widen(spans, x, t)
        out[art] = SkewDigest(tuple((x, lo, hi) for x, (lo, hi) in spans.items()), s.max_events,
                              int(s.min_severity))
    return out


def _widen(spans: dict, x: Entity, t: float) -> None:
    """Widen ``x``'s first/last time span in ``spans`` to include ``t``."""
    span = spans.get(x)
    if span is None:
        spans[x] = [t, t]
    elif t < span[0]:
        span[0] = t
    elif t > span[1]:
        span[1] = t


def estimate_skews(events: Sequence[Event], vocab: Vocabulary | None = None,
                   settings: TimingSettings | None = None, prefer: Sequence[str] = (),
                   digests: Mapping[str, SkewDigest] | None = None) -> list[ClockSkew]:
    """Clock offsets of artifacts against a reference (see the module docstring).

    ``prefer`` lists artifacts to take as reference first (then captures).  Artifacts
    with no shared events, or an offset below ``min_skew_s``, get no entry.  ``digests``
    (artifact -> :func:`skew_digests` of all its events, made with these settings) spare
    running the fixed entity patterns over those artifacts' events again: the result is the
    same with or without them.
    """
    s = settings or TimingSettings()
    digests = {a: d for a, d in (digests or {}).items()
               if d.max_events == s.max_events and d.min_severity == int(s.min_severity)}
    learned = vocab is not None and vocab._host_re is not None
    by_art: dict[str, list[tuple[datetime, frozenset[Entity]]]] = defaultdict(list)
    captures: list[str] = []
    if len({e.artifact for e in events if e.ts is not None and e.severity >= s.min_severity}) < 2:
        return []                                         # one clock: nothing to compare
    pending: dict[str, list[Event]] = defaultdict(list)

    queued: dict[str, int] = defaultdict(int)
    learned_spans: dict[str, dict[Entity, list[float]]] = defaultdict(dict)   # of digested artifacts

    def read(art: str) -> None:
        """Entities of an artifact's pending events, in order (of a digested artifact: the
        vocabulary's names only, the rest is in its digest)."""
        batch = pending.pop(art, [])
        if art in digests:
            if learned:
                spans = learned_spans[art]
                for i, x in vocabulary_hosts([_event_text(e) for e in batch], vocab):
                    _widen(spans, x, batch[i].ts.timestamp())
            return
        lst = by_art[art]
        for e, ents in zip(batch, skew_entities_many([_event_text(e) for e in batch], vocab)):
            if ents:
                lst.append((e.ts, ents))

    for e in events:
        if e.kind.startswith("net.") and e.artifact not in captures:
            captures.append(e.artifact)
        if e.ts is None or e.severity < s.min_severity or queued[e.artifact] >= s.max_events:
            continue
        if not learned and e.artifact in digests:
            continue
        queued[e.artifact] += 1
        batch = pending[e.artifact]
        batch.append(e)
        if len(batch) >= _CHUNK:
            read(e.artifact)
    for art in list(pending):
        read(art)
    # per artifact: entity -> sorted times
    index: dict[str, dict[Entity, list[float]]] = {}
    for art, lst in by_art.items():
        idx: dict[Entity, list[float]] = defaultdict(list)
        for ts, ents in lst:
            for x in ents:
                idx[x].append(ts.timestamp())
        for v in idx.values():
            v.sort()
        index[art] = idx
    # a digested artifact: its first and last time of each entity (all that is read below),
    # the vocabulary's names found above merged in
    for art, d in digests.items():
        idx = {x: list(span) for x, span in learned_spans.get(art, {}).items()}
        for x, lo, hi in d.spans:
            v = idx.get(x)
            idx[x] = [min(lo, v[0]), max(hi, v[1])] if v else [lo, hi]
        if idx:
            index[art] = idx
    limit = s.max_skew.total_seconds()
    offsets: dict[tuple[str, str], tuple[float, int]] = {}
    arts = sorted(index)
    for i, a in enumerate(arts):
        for b in arts[i + 1:]:
            diffs = []
            for x, times_a in index[a].items():
                times_b = index[b].get(x)
                if not times_b:
                    continue
                # the onset and the end of what both record about x: robust to one side recording
                # every occurrence and the other only the first and last (captures do)
                for d in (times_b[0] - times_a[0], times_b[-1] - times_a[-1]):
                    if abs(d) <= limit:
                        diffs.append(d)
            if len(diffs) < s.min_pairs:
                continue
            off = median(diffs)
            if median(abs(d - off) for d in diffs) > s.max_spread_s:
                continue                                  # the pairs disagree: not one clock offset
            offsets[(a, b)] = (off, len(diffs))          # b's clock minus a's
            offsets[(b, a)] = (-off, len(diffs))
    if not offsets:
        return []
    partners: dict[str, int] = defaultdict(int)
    for (a, _b) in offsets:
        partners[a] += 1
    pref = {p: i for i, p in enumerate((*prefer, *sorted(captures)))}
    reference = min(partners, key=lambda a: (a not in pref, pref.get(a, 0), -partners[a], a))
    # breadth first from the reference: offset of each artifact against it
    known: dict[str, tuple[float, int]] = {reference: (0.0, 0)}
    queue = [reference]
    while queue:
        a = queue.pop(0)
        for (x, b), (off, n) in sorted(offsets.items()):
            if x != a or b in known:
                continue
            known[b] = (known[a][0] + off, n)
            queue.append(b)
    return [ClockSkew(artifact=a, reference=reference, offset_s=round(off, 6), pairs=n)
            for a, (off, n) in sorted(known.items()) if a != reference and abs(off) >= s.min_skew_s]


_WEIGHT = {Severity.CRITICAL: 2.0, Severity.HIGH: 1.0, Severity.MEDIUM: 0.3, Severity.LOW: 0.0, Severity.INFO: 0.0}


def incident_window(events: Sequence[Event], offsets: Mapping[str, float] | None = None,
                    settings: TimingSettings | None = None) -> tuple[datetime, datetime] | None:
    """The busiest stretch of unusual problems (see the module docstring), or None without dated problems.

    >>> from datetime import datetime, timedelta, timezone
    >>> from backline.model import Event, Severity
    >>> t0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
    >>> chronic = [Event(t0 + timedelta(minutes=m), "a.log", "log.warning", "w", Severity.MEDIUM) for m in range(600)]
    >>> burst = [Event(t0 + timedelta(hours=6, seconds=s), "a.log", "log.error", "e", Severity.HIGH) for s in range(5)]
    >>> start, end = incident_window(chronic + burst)
    >>> start.strftime("%H:%M:%S"), end.strftime("%H:%M:%S")
    ('14:00:00', '14:00:10')
    >>> incident_window([Event(datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc), "a.log", "log.error", "e",
    ...                        Severity.HIGH)])[1].year    # a damaged clock
    9999
    """
    s = settings or TimingSettings()
    offsets = offsets or {}
    width = s.bucket_s
    per_art: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    seen: dict[str, int] = defaultdict(int)
    for e in events:
        if e.ts is None or e.severity < s.min_severity:
            continue
        if seen[e.artifact] >= s.max_events * 5:
            continue
        seen[e.artifact] += 1
        t = e.ts.timestamp() - offsets.get(e.artifact, 0.0)
        # a capture is taken while the problem happens: its problems say "now" more than a log's
        per_art[e.artifact][int(t // width)] += _WEIGHT[e.severity] * (s.capture_weight if e.kind.startswith("net.") else 1.0)
    if not per_art:
        return None
    excess: dict[int, float] = defaultdict(float)
    arts_in: dict[int, set[str]] = defaultdict(set)
    for art, buckets in per_art.items():
        lo, hi = min(buckets), max(buckets)
        span = hi - lo + 1
        base = 0.0
        if span >= s.min_baseline_buckets:
            # the everyday rate: the median over the active span, counting the empty buckets
            values = sorted(buckets.values())
            zeros = span - len(values)
            mid = span // 2
            base = 0.0 if mid < zeros else values[mid - zeros]
        for b, w in buckets.items():
            if w > base:
                excess[b] += w - base
                arts_in[b].add(art)
    if not excess:
        return None
    score = {b: w * (1 + 0.5 * (len(arts_in[b]) - 1)) for b, w in excess.items()}
    near = {b: score.get(b - 1, 0.0) + score[b] + score.get(b + 1, 0.0) for b in score}
    peak = max(near, key=lambda b: (near[b], score[b], b))   # ties: the later (evidence is collected after)
    floor = 0.2 * score[peak]
    lo = hi = peak
    gap = 0
    b = peak - 1
    while gap <= 2:
        if score.get(b, 0.0) >= floor:
            lo, gap = b, 0
        else:
            gap += 1
        b -= 1
    gap = 0
    b = peak + 1
    while gap <= 2:
        if score.get(b, 0.0) >= floor:
            hi, gap = b, 0
        else:
            gap += 1
        b += 1
    return _dt(lo * width), _dt((hi + 1) * width)


def _dt(seconds: float) -> datetime:
    """Seconds since the epoch as UTC, clamped to what a datetime holds (a damaged clock can say 9999)."""
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=timezone.utc) if seconds > 0 else datetime.min.replace(tzinfo=timezone.utc)
