"""Streaming statistics of one log file, per template and overall.

:class:`LogStats` is fed every record once (with its miner shape number) and
keeps what the findings need in memory that grows with the number of
templates and of time buckets, never with the number of lines: per shape a
count, first / last occurrence, a few example lines and a per-bucket count
histogram; overall the time range, the largest gaps between records, a
fixed-size sample of gaps and how often time went backwards.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from datetime import datetime

from backline.analyzers.logs.records import LogRecord
from backline.model import Severity

#: Width of a histogram bucket, seconds (doubled whenever a template's
#: histogram would hold more than MAX_BUCKETS buckets).
BUCKET_S = 60
MAX_BUCKETS = 8192
#: Gaps kept in the reservoir sample used for the file's usual rhythm.
GAP_SAMPLE = 4096
EXAMPLES = 3


@dataclass(slots=True)
class TemplateStats:
    """What is known about one template (or shape) of a file."""

    template: str
    template_id: str = ""
    count: int = 0
    first_line: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    severity: Severity = Severity.INFO
    level: str = ""
    examples: list[tuple[int, str]] = field(default_factory=list)    # (line, head text)
    buckets: dict[int, int] = field(default_factory=dict)

    def merge(self, other: "TemplateStats") -> None:
        """Add ``other`` (another shape of the same template) into this one."""
        if other.count == 0:
            return
        if self.count == 0 or (other.first_line and other.first_line < self.first_line):
            self.first_line = other.first_line
            self.examples = (other.examples + self.examples)[:EXAMPLES]
        else:
            self.examples = (self.examples + other.examples)[:EXAMPLES]
        self.examples.sort()
        self.count += other.count
        if other.first_ts and (self.first_ts is None or other.first_ts < self.first_ts):
            self.first_ts = other.first_ts
        if other.last_ts and (self.last_ts is None or other.last_ts > self.last_ts):
            self.last_ts = other.last_ts
        if other.severity > self.severity:
            self.severity, self.level = other.severity, other.level
        for b, c in other.buckets.items():
            self.buckets[b] = self.buckets.get(b, 0) + c


@dataclass(frozen=True, slots=True)
class Gap:
    """A pause between two consecutive records."""

    seconds: float
    line_before: int
    line_after: int
    ts_before: datetime
    ts_after: datetime


class LogStats:
    """Accumulates :class:`TemplateStats` per shape and file-wide numbers."""

    def __init__(self) -> None:
        self.shapes: dict[int, TemplateStats] = {}
        self.records = 0
        self.with_ts = 0
        self.first_ts: datetime | None = None
        self.last_ts: datetime | None = None
        self.ts_backwards = 0
        self.first_error: LogRecord | None = None
        self.last: LogRecord | None = None
        self.last_error: LogRecord | None = None
        self.severity_counts: dict[Severity, int] = {}
        self._prev: tuple[float, int, datetime] | None = None
        self._gaps: list[float] = []
        self._gap_n = 0
        self._top_gaps: list[tuple[float, int, Gap]] = []
        self._rng = random.Random(0)
        self.bucket_s = BUCKET_S

    def add(self, rec: LogRecord, shape: int) -> None:
        """Account one record whose head line has miner shape ``shape``."""
        self.records += 1
        sev = rec.severity
        self.severity_counts[sev] = self.severity_counts.get(sev, 0) + 1
        self.last = rec
        if sev >= Severity.HIGH:
            self.last_error = rec
            if self.first_error is None:
                self.first_error = rec
        st = self.shapes.get(shape)
        if st is None:
            st = self.shapes[shape] = TemplateStats("", first_line=rec.line)
        st.count += 1
        if len(st.examples) < EXAMPLES:
            st.examples.append((rec.line, rec.text.split("\n", 1)[0][:500]))
        if sev > st.severity or not st.level:
            if sev >= st.severity:
                st.severity, st.level = sev, rec.level
        ts = rec.ts
        if ts is None:
            return
        self.with_ts += 1
        if st.first_ts is None or ts < st.first_ts:
            st.first_ts = ts
        if st.last_ts is None or ts > st.last_ts:
            st.last_ts = ts
        t = ts.timestamp()
        b = int(t) // self.bucket_s
        buckets = st.buckets
        buckets[b] = buckets.get(b, 0) + 1
        if len(buckets) > MAX_BUCKETS:
            self._coarsen()
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts
        prev = self._prev
        if prev is not None:
            gap = t - prev[0]
            if gap < 0:
                self.ts_backwards += 1
            else:
                # reservoir sample of gaps (the file's usual rhythm)
                self._gap_n += 1
                if len(self._gaps) < GAP_SAMPLE:
                    self._gaps.append(gap)
                else:
                    j = int(self._rng.random() * self._gap_n)
                    if j < GAP_SAMPLE:
                        self._gaps[j] = gap
                top = self._top_gaps
                if len(top) < 10 or gap > top[0][0]:
                    item = (gap, rec.line, Gap(gap, prev[1], rec.line, prev[2], ts))
                    if len(top) < 10:
                        heapq.heappush(top, item)
                    else:
                        heapq.heapreplace(top, item)
        self._prev = (t, rec.line, ts)

    def _coarsen(self) -> None:
        """Double the bucket width of every histogram (memory stays bounded)."""
        self.bucket_s *= 2
        for st in self.shapes.values():
            merged: dict[int, int] = {}
            for b, c in st.buckets.items():
                merged[b // 2] = merged.get(b // 2, 0) + c
            st.buckets = merged

    def gap_quantile(self, q: float) -> float | None:
        """Quantile ``q`` of the sampled gaps between records (seconds)."""
        if not self._gaps:
            return None
        s = sorted(self._gaps)
        return s[min(len(s) - 1, int(q * len(s)))]

    def largest_gaps(self) -> list[Gap]:
        """The largest gaps, largest first."""
        return [g for _, _, g in sorted(self._top_gaps, key=lambda t: (-t[0], t[1]))]
