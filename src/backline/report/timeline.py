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

import numpy as np

from backline.model import Event, Severity

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


def _window(epochs: np.ndarray) -> tuple[float, float]:
    """The [lo, hi] window to draw, clipping far outliers (``epochs`` sorted)."""
    lo, hi = float(epochs[0]), float(epochs[-1])
    n = len(epochs)
    if n >= 20:
        cut = max(1, n // 200)                 # 0.5 % each side
        p_lo, p_hi = float(epochs[cut]), float(epochs[n - 1 - cut])
        core = p_hi - p_lo
        if core > 0 and (hi - lo) > 20 * core:
            pad = core * 0.02
            lo, hi = max(lo, p_lo - pad), min(hi, p_hi + pad)
    if hi - lo < 1.0:                          # one instant: show a minute around it
        mid = min(max((hi + lo) / 2, _MIN_EPOCH + 30.0), _MAX_EPOCH - 30.0)
        return mid - 30.0, mid + 30.0
    edge = (hi - lo) * 0.01                    # keep the first and last events off the edges
    return max(_MIN_EPOCH, lo - edge), min(_MAX_EPOCH, hi + edge)


#: Window limits that stay representable as datetimes (year 1 and 9999, a day inside).
_MIN_EPOCH = (datetime(1, 1, 2, tzinfo=timezone.utc) - _EPOCH).total_seconds()
_MAX_EPOCH = (datetime(9999, 12, 30, tzinfo=timezone.utc) - _EPOCH).total_seconds()


def _at(epoch: float) -> datetime:
    return _EPOCH + timedelta(seconds=min(max(epoch, _MIN_EPOCH), _MAX_EPOCH))


def build_timeline(events: Iterable[Event], *, n_buckets: int = DEFAULT_BUCKETS,
                   max_lanes: int = DEFAULT_MAX_LANES,
                   artifact_order: Mapping[str, int] | None = None) -> Timeline:
    """Bucket ``events`` into lanes (one per artifact) and a density band.

    ``artifact_order`` gives the order of lanes (artifact path -> rank);
    lanes of artifacts not in it follow, by first event time.  When there are
    more than ``max_lanes`` artifacts, those with the worst and most events
    keep a lane and the rest share one named :data:`OTHER_LANE`.
    One pass over the events in Python, the counting in numpy.
    """
    if n_buckets < 1 or max_lanes < 1:
        raise ValueError("n_buckets and max_lanes must be at least 1")
    lane_of: dict[str, int] = {}
    undated: list[int] = []
    epochs_l: list[float] = []
    lanes_l: list[int] = []
    sevs_l: list[int] = []
    for ev in events:
        idx = lane_of.get(ev.artifact)
        if idx is None:
            idx = lane_of[ev.artifact] = len(lane_of)
            undated.append(0)
        ts = ev.ts
        if ts is None:
            undated[idx] += 1
            continue
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=timezone.utc)
        epochs_l.append(ts.timestamp())
        lanes_l.append(idx)
        sevs_l.append(int(ev.severity))
    if not lane_of:
        return Timeline(None, None, n_buckets, 0.0, (), (), 0, 0)

    n_lanes = len(lane_of)
    paths = list(lane_of)
    epochs = np.asarray(epochs_l, dtype=np.float64)
    lanes = np.asarray(lanes_l, dtype=np.int64)
    sevs = np.asarray(sevs_l, dtype=np.int64)
    del epochs_l, lanes_l, sevs_l
    n_dated = len(epochs)
    undated_arr = np.asarray(undated, dtype=np.int64)
    dated_per_lane = np.bincount(lanes, minlength=n_lanes)
    worst = np.full(n_lanes, -1, dtype=np.int64)
    np.maximum.at(worst, lanes, sevs)

    # which lanes are drawn: display index per artifact lane (the last one is "other")
    display = np.arange(n_lanes)
    merged: list[int] = []
    if n_lanes > max_lanes:
        weight = sorted(range(n_lanes), reverse=True,
                        key=lambda i: (int(worst[i]), int(dated_per_lane[i] + undated_arr[i]), -i))
        keep = sorted(weight[: max_lanes - 1])
        merged = sorted(weight[max_lanes - 1:])
        display = np.full(n_lanes, len(keep), dtype=np.int64)
        display[keep] = np.arange(len(keep))
        shown = [paths[i] for i in keep]
    else:
        shown = paths
    n_display = len(shown) + (1 if merged else 0)
    lane_disp = display[lanes] if n_dated else lanes

    before = after = 0
    histogram: tuple[tuple[int, ...], ...] = ()
    cell_counts = np.zeros((n_display, n_buckets, N_SEVERITIES), dtype=np.int64)
    first = np.full(n_display, np.inf)
    last = np.full(n_display, -np.inf)
    lo = hi = width = 0.0
    if n_dated:
        lo, hi = _window(np.sort(epochs))
        width = (hi - lo) / n_buckets
        inside = (epochs >= lo) & (epochs <= hi)
        before = int(np.count_nonzero(epochs < lo))
        after = int(np.count_nonzero(epochs > hi))
        bucket = np.minimum(((epochs[inside] - lo) / width).astype(np.int64), n_buckets - 1)
        key = (lane_disp[inside] * n_buckets + bucket) * N_SEVERITIES + sevs[inside]
        cell_counts = np.bincount(key, minlength=n_display * n_buckets * N_SEVERITIES).reshape(
            n_display, n_buckets, N_SEVERITIES)
        histogram = tuple(tuple(int(c) for c in row) for row in cell_counts.sum(axis=0))
        np.minimum.at(first, lane_disp, epochs)
        np.maximum.at(last, lane_disp, epochs)

    def make_lane(d: int, name: str, total: int, und: int, merged_n: int = 1) -> TimelineLane:
        nonzero = np.flatnonzero(cell_counts[d].sum(axis=1))
        cells = tuple(TimelineCell(int(b), tuple(int(c) for c in cell_counts[d, b])) for b in nonzero)
        f = _at(float(first[d])) if np.isfinite(first[d]) else None
        last_ = _at(float(last[d])) if np.isfinite(last[d]) else None
        return TimelineLane(name, total, und, cells, f, last_, merged=merged_n)

    out: list[TimelineLane] = []
    for d, path in enumerate(shown):
        i = lane_of[path]
        out.append(make_lane(d, path, int(dated_per_lane[i] + undated_arr[i]), int(undated_arr[i])))
    if merged:
        total = int(dated_per_lane[merged].sum() + undated_arr[merged].sum())
        out.append(make_lane(len(shown), OTHER_LANE, total, int(undated_arr[merged].sum()), len(merged)))

    order = artifact_order or {}
    big = len(order) + 1

    def lane_key(lane: TimelineLane) -> tuple[int, int, float, str]:
        if lane.artifact == OTHER_LANE:
            return (2, 0, 0.0, "")
        rank = order.get(lane.artifact)
        t = lane.first.timestamp() if lane.first else math.inf
        return (0 if rank is not None else 1, rank if rank is not None else big, t, lane.artifact)

    out.sort(key=lane_key)
    return Timeline(
        start=_at(lo) if n_dated else None, end=_at(hi) if n_dated else None,
        n_buckets=n_buckets, bucket_seconds=width, histogram=histogram,
        lanes=tuple(out), dated=n_dated, undated=int(undated_arr.sum()),
        clipped_before=before, clipped_after=after, other_artifacts=len(merged),
    )


def _epoch(ts: datetime) -> float:
    return (ts - _EPOCH).total_seconds()


_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
               21600, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400)
_MONTH_STEPS = (1, 2, 3, 6, 12, 24, 60, 120, 240, 600, 1200, 2400, 6000, 12000, 24000)


def _month_ticks(start: datetime, end: datetime, max_ticks: int) -> list[datetime]:
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    step = next((m for m in _MONTH_STEPS if months / m <= max_ticks), _MONTH_STEPS[-1])
    index = start.year * 12 + start.month - 1
    index = -(-index // step) * step              # first month index divisible by step
    ticks = []
    while index // 12 <= 9999:
        t = datetime(max(1, index // 12), index % 12 + 1, 1, tzinfo=timezone.utc)
        if t > end:
            return ticks
        if t >= start:
            ticks.append(t)
        index += step
    return ticks


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
        if ts.hour == 0 and ts.minute == 0 and span_seconds > 6 * 3600:
            return ts.strftime("%b %d")          # midnight shows the new day
        return ts.strftime("%H:%M")
    if span_seconds <= 120 * 86400:
        return ts.strftime("%b %d")
    return ts.strftime("%Y-%m-%d")
