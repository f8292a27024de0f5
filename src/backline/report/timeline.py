"""The case timeline: events of every artifact, bucketed for a chart.

The chart has one *lane* per artifact (events over time, coloured by their
worst severity) and a *density band* (all events per time bucket, stacked by
severity).  Everything is bucketed, so the size of the chart does not grow
with the number of events: 100 events and 10 million events give the same
number of cells at most (``lanes x buckets``).

Events without a timestamp are counted per lane as *undated*.  A handful of
events far away from the rest (a record stamped 1970 by a bad clock) would
squash everything else into one bucket, so when the full span is much wider
than the span of the central 99 % of events the window is clipped to the
latter, and the events outside are counted as ``clipped_before`` /
``clipped_after``.

>>> from datetime import datetime, timezone
>>> from backline.model import Event, Severity
>>> t0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
>>> tl = build_timeline([Event(t0, "a.log", "log.error", "boom", Severity.HIGH),
...                      Event(None, "a.log", "log.info", "no time")])
>>> (tl.dated, tl.undated, len(tl.lanes), tl.lanes[0].undated)
(1, 1, 1, 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping

from backline.model import Event, Severity, utc

#: Severity levels, lowest first; counts tuples are indexed by ``Severity`` value.
N_SEVERITIES = len(Severity)
DEFAULT_BUCKETS = 120
DEFAULT_MAX_LANES = 24
#: Name of the lane that collects artifacts beyond ``max_lanes``.
OTHER_LANE = "(other artifacts)"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class TimelineCell:
    """The events of one lane that fall into one time bucket."""

    bucket: int
    counts: tuple[int, ...]          # by severity value (info .. critical)

    @property
    def total(self) -> int:
        return sum(self.counts)

    @property
    def max_severity(self) -> Severity:
        for value in range(N_SEVERITIES - 1, -1, -1):
            if self.counts[value]:
                return Severity(value)
        return Severity.INFO


@dataclass(frozen=True, slots=True)
class TimelineLane:
    """One artifact's row of the chart (or the lane that merges the rest)."""

    artifact: str
    total: int                        # events of this lane, dated or not
    undated: int
    cells: tuple[TimelineCell, ...]   # non-empty buckets only, in time order
    first: datetime | None = None
    last: datetime | None = None
    merged: int = 1                   # artifacts merged into this lane

    @property
    def max_severity(self) -> Severity:
        return max((c.max_severity for c in self.cells), default=Severity.INFO)


@dataclass(frozen=True, slots=True)
class Timeline:
    """Events across all artifacts, bucketed; see the module docstring."""

    start: datetime | None            # window shown (None when no dated events)
    end: datetime | None
    n_buckets: int
    bucket_seconds: float
    histogram: tuple[tuple[int, ...], ...]   # per bucket: counts by severity
    lanes: tuple[TimelineLane, ...]
    dated: int
    undated: int
    clipped_before: int = 0
    clipped_after: int = 0
    other_artifacts: int = 0          # artifacts folded into the OTHER_LANE lane

    @property
    def total(self) -> int:
        return self.dated + self.undated

    @property
    def empty(self) -> bool:
        return self.total == 0

    def bucket_start(self, index: int) -> datetime:
        """Start time of bucket ``index`` (requires dated events)."""
        if self.start is None:
            raise ValueError("timeline has no dated events")
        return self.start + timedelta(seconds=index * self.bucket_seconds)


def _epoch(ts: datetime) -> float:
    return (ts - _EPOCH).total_seconds()


def _window(epochs: list[float]) -> tuple[float, float]:
    """The [lo, hi] window to draw, clipping far outliers (``epochs`` sorted)."""
    lo, hi = epochs[0], epochs[-1]
    n = len(epochs)
    if n >= 20:
        cut = max(1, n // 200)                 # 0.5 % each side
        p_lo, p_hi = epochs[cut], epochs[n - 1 - cut]
        core = p_hi - p_lo
        if core > 0 and (hi - lo) > 20 * core:
            pad = core * 0.02
            lo, hi = max(lo, p_lo - pad), min(hi, p_hi + pad)
    if hi - lo < 1.0:                          # one instant: show a minute around it
        mid = (hi + lo) / 2
        return mid - 30.0, mid + 30.0
    edge = (hi - lo) * 0.01                    # keep the first and last events off the edges
    return lo - edge, hi + edge


def build_timeline(events: Iterable[Event], *, n_buckets: int = DEFAULT_BUCKETS,
                   max_lanes: int = DEFAULT_MAX_LANES,
                   artifact_order: Mapping[str, int] | None = None) -> Timeline:
    """Bucket ``events`` into lanes (one per artifact) and a density band.

    ``artifact_order`` gives the order of lanes (artifact path -> rank);
    lanes of artifacts not in it follow, by first event time.  When there are
    more than ``max_lanes`` artifacts, those with the fewest and mildest
    events are merged into one lane named :data:`OTHER_LANE`.
    """
    if n_buckets < 1 or max_lanes < 1:
        raise ValueError("n_buckets and max_lanes must be at least 1")
    per_lane: dict[str, list[tuple[float, int]]] = {}
    undated: dict[str, int] = {}
    epochs: list[float] = []
    for ev in events:
        lane = per_lane.setdefault(ev.artifact, [])
        ts = utc(ev.ts)
        if ts is None:
            undated[ev.artifact] = undated.get(ev.artifact, 0) + 1
            continue
        e = _epoch(ts)
        lane.append((e, int(ev.severity)))
        epochs.append(e)
    n_undated = sum(undated.values())
    if not per_lane:
        return Timeline(None, None, n_buckets, 0.0, (), (), 0, 0)

    epochs.sort()
    if epochs:
        lo, hi = _window(epochs)
    else:
        lo, hi = 0.0, 1.0
    width = (hi - lo) / n_buckets

    # choose the lanes to show, merge the rest
    def weight(path: str) -> tuple[int, int]:
        sev = max((s for _, s in per_lane[path]), default=-1)
        return (sev, len(per_lane[path]) + undated.get(path, 0))

    paths = list(per_lane)
    merged: list[str] = []
    if len(paths) > max_lanes:
        ranked = sorted(paths, key=weight, reverse=True)
        keep = set(ranked[: max_lanes - 1])
        merged = [p for p in paths if p not in keep]
        paths = [p for p in paths if p in keep]

    histogram = [[0] * N_SEVERITIES for _ in range(n_buckets)]
    before = after = 0

    def bucket_lane(points: list[tuple[float, int]]) -> tuple[TimelineCell, ...]:
        nonlocal before, after
        cells: dict[int, list[int]] = {}
        for e, sev in points:
            if e < lo:
                before += 1
                continue
            if e > hi:
                after += 1
                continue
            idx = min(n_buckets - 1, int((e - lo) / width)) if epochs else 0
            counts = cells.get(idx)
            if counts is None:
                counts = cells[idx] = [0] * N_SEVERITIES
            counts[sev] += 1
            histogram[idx][sev] += 1
        return tuple(TimelineCell(i, tuple(cells[i])) for i in sorted(cells))

    def span(points: list[tuple[float, int]]) -> tuple[datetime | None, datetime | None]:
        if not points:
            return None, None
        first = min(e for e, _ in points)
        last = max(e for e, _ in points)
        return _EPOCH + timedelta(seconds=first), _EPOCH + timedelta(seconds=last)

    lanes: list[TimelineLane] = []
    for path in paths:
        pts = per_lane[path]
        first, last = span(pts)
        lanes.append(TimelineLane(path, len(pts) + undated.get(path, 0), undated.get(path, 0),
                                  bucket_lane(pts), first, last))
    if merged:
        pts = [p for path in merged for p in per_lane[path]]
        und = sum(undated.get(p, 0) for p in merged)
        first, last = span(pts)
        lanes.append(TimelineLane(OTHER_LANE, len(pts) + und, und, bucket_lane(pts),
                                  first, last, merged=len(merged)))

    order = artifact_order or {}
    big = len(order) + 1

    def lane_key(lane: TimelineLane) -> tuple[int, int, float, str]:
        if lane.artifact == OTHER_LANE:
            return (2, 0, 0.0, "")
        rank = order.get(lane.artifact)
        first = _epoch(lane.first) if lane.first else math.inf
        return (0 if rank is not None else 1, rank if rank is not None else big, first, lane.artifact)

    lanes.sort(key=lane_key)
    start = _EPOCH + timedelta(seconds=lo) if epochs else None
    end = _EPOCH + timedelta(seconds=hi) if epochs else None
    return Timeline(
        start=start, end=end, n_buckets=n_buckets, bucket_seconds=width if epochs else 0.0,
        histogram=tuple(tuple(h) for h in histogram) if epochs else (),
        lanes=tuple(lanes), dated=len(epochs), undated=n_undated,
        clipped_before=before, clipped_after=after, other_artifacts=len(merged),
    )


_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
               21600, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400)
_MONTH_STEPS = (1, 2, 3, 6, 12, 24, 60, 120)


def _month_ticks(start: datetime, end: datetime, max_ticks: int) -> list[datetime]:
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    step = next((m for m in _MONTH_STEPS if months / m <= max_ticks), _MONTH_STEPS[-1])
    index = start.year * 12 + start.month - 1
    index = -(-index // step) * step              # first month index divisible by step
    ticks = []
    while True:
        t = datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)
        if t > end:
            return ticks
        if t >= start:
            ticks.append(t)
        index += step


def nice_ticks(start: datetime, end: datetime, max_ticks: int = 8) -> list[datetime]:
    """Round tick times between ``start`` and ``end`` (at most ``max_ticks``).

    Seconds, minutes, hours and days are multiples of a round step; spans of
    more than a few weeks get ticks on the first of a month.

    >>> from datetime import datetime, timezone
    >>> a = datetime(2024, 1, 1, 10, 7, tzinfo=timezone.utc)
    >>> [t.strftime("%H:%M") for t in nice_ticks(a, a.replace(hour=11, minute=2))]
    ['10:10', '10:20', '10:30', '10:40', '10:50', '11:00']
    >>> [t.strftime("%Y-%m") for t in nice_ticks(a, a.replace(year=2025, month=2))]
    ['2024-03', '2024-05', '2024-07', '2024-09', '2024-11', '2025-01']
    """
    span = (end - start).total_seconds()
    if span <= 0:
        return [start]
    step = next((s for s in _TICK_STEPS if span / s <= max_ticks), None)
    if step is None:
        return _month_ticks(start, end, max_ticks)
    first = math.ceil(_epoch(start) / step) * step
    ticks = []
    t = first
    while t <= _epoch(end) + 1e-6:
        ticks.append(_EPOCH + timedelta(seconds=t))
        t += step
    return ticks


def tick_label(ts: datetime, span_seconds: float) -> str:
    """A tick label with the precision the span needs."""
    if span_seconds <= 120:
        return ts.strftime("%H:%M:%S")
    if span_seconds <= 2 * 86400:
        return ts.strftime("%H:%M")
    if span_seconds <= 120 * 86400:
        return ts.strftime("%b %d")
    return ts.strftime("%Y-%m-%d")
