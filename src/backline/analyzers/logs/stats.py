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
import math
import random
from collections import Counter
from collections.abc import Sequence
from operator import itemgetter
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
    first_t: float = math.inf       # first_ts / last_ts as epoch seconds (fast comparisons)
    last_t: float = -math.inf
    # the records at error level or above (a template can mix levels: an access-log
    # request template holds 200 and 500 answers); examples are their first lines
    err_count: int = 0
    err_first_line: int = 0
    err_first_ts: datetime | None = None
    err_last_ts: datetime | None = None
    err_examples: list[tuple[int, str]] = field(default_factory=list)

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
            self.first_ts, self.first_t = other.first_ts, other.first_t
        if other.last_ts and (self.last_ts is None or other.last_ts > self.last_ts):
            self.last_ts, self.last_t = other.last_ts, other.last_t
        if other.severity > self.severity:
            self.severity, self.level = other.severity, other.level
        for b, c in other.buckets.items():
            self.buckets[b] = self.buckets.get(b, 0) + c
        if other.err_count:
            if not self.err_count or other.err_first_line < self.err_first_line:
                self.err_first_line = other.err_first_line
            self.err_examples = sorted(self.err_examples + other.err_examples)[:EXAMPLES]
            self.err_count += other.err_count
            if other.err_first_ts and (self.err_first_ts is None or other.err_first_ts < self.err_first_ts):
                self.err_first_ts = other.err_first_ts
            if other.err_last_ts and (self.err_last_ts is None or other.err_last_ts > self.err_last_ts):
                self.err_last_ts = other.err_last_ts


def _add_error(st: TemplateStats, row: tuple) -> None:
    """Account an error-level record (a row) in its shape's error numbers."""
    st.err_count += 1
    if st.err_count == 1:
        st.err_first_line = row[0]
    if st.err_count <= EXAMPLES:
        st.err_examples.append((row[0], row[11].split("\n", 1)[0][:500]))
    ts = row[2]
    if ts is not None:
        if st.err_first_ts is None or ts < st.err_first_ts:
            st.err_first_ts = ts
        if st.err_last_ts is None or ts > st.err_last_ts:
            st.err_last_ts = ts


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
        self._first_error: tuple | None = None      # rows; LogRecords made on demand
        self._last: tuple | None = None
        self._last_error: tuple | None = None
        self._last_error_index = -1                 # record index (0-based) of the last error
        self._first_t = math.inf
        self._last_t = -math.inf
        self.severity_counts: dict[Severity, int] = {}
        self._prev: tuple[float, int, datetime] | None = None
        self._gaps: list[float] = []
        self._gap_n = 0
        self._top_gaps: list[tuple[float, int, Gap]] = []
        self._rng = random.Random(0)
        self.bucket_s = BUCKET_S

    def add(self, rec: LogRecord, shape: int) -> None:
        """Account one record whose head line has miner shape ``shape``."""
        self.add_rows([(rec.line, rec.end_line, rec.ts, rec.ts_quality, rec.level, rec.severity,
                        rec.component, rec.pid, rec.thread, rec.host, rec.message, rec.text)], [shape])

    @property
    def first_error(self) -> LogRecord | None:
        """The first record at error level or above."""
        return None if self._first_error is None else LogRecord(*self._first_error)

    @property
    def last_error(self) -> LogRecord | None:
        """The last record at error level or above."""
        return None if self._last_error is None else LogRecord(*self._last_error)

    @property
    def records_after_last_error(self) -> int | None:
        """How many records follow the last error record (``None`` without errors)."""
        return None if self._last_error is None else self.records - self._last_error_index - 1

    @property
    def last(self) -> LogRecord | None:
        """The last record."""
        return None if self._last is None else LogRecord(*self._last)

    def add_rows(self, rows: Sequence[tuple], shapes: Sequence[int]) -> None:
        """Account a block of records given as rows (:data:`~.records.ROW_FIELDS` order)
        with their miner shapes.  One tight loop: this runs once per log line."""
        if not rows:
            return
        base = self.records
        self.records += len(rows)
        last_error = self._last_error
        self._last = rows[-1]
        high = Severity.HIGH
        sev_counts = self.severity_counts
        shapes_d = self.shapes
        with_ts = 0
        f_t, l_t = self._first_t, self._last_t
        prev = self._prev
        p_t, p_line, p_ts = prev if prev is not None else (None, 0, None)
        gaps, top = self._gaps, self._top_gaps
        for sev, c in Counter(map(itemgetter(5), rows)).items():
            sev_counts[sev] = sev_counts.get(sev, 0) + c
        for row, shape in zip(rows, shapes):
            sev = row[5]
            st = shapes_d.get(shape)
            if st is None:
                st = shapes_d[shape] = TemplateStats("", first_line=row[0])
            if sev >= high:
                self._last_error = row
                if self._first_error is None:
                    self._first_error = row
                _add_error(st, row)
            st.count += 1
            if st.count <= EXAMPLES:       # the first EXAMPLES records of a shape are its examples
                st.examples.append((row[0], row[11].split("\n", 1)[0][:500]))
            if sev > st.severity or not st.level:
                if sev >= st.severity:
                    st.severity, st.level = sev, row[4]
            ts = row[2]
            if ts is None:
                continue
            with_ts += 1
            t = ts.timestamp()
            if t < st.first_t:
                st.first_t, st.first_ts = t, ts
            if t > st.last_t:
                st.last_t, st.last_ts = t, ts
            b = int(t) // self.bucket_s
            buckets = st.buckets
            buckets[b] = buckets.get(b, 0) + 1
            if len(buckets) > MAX_BUCKETS:
                self._coarsen()
            if t < f_t:
                f_t, self.first_ts = t, ts
            if t > l_t:
                l_t, self.last_ts = t, ts
            if p_t is not None:
                gap = t - p_t
                if gap < 0:
                    self.ts_backwards += 1
                else:
                    # reservoir sample of gaps (the file's usual rhythm)
                    self._gap_n += 1
                    if len(gaps) < GAP_SAMPLE:
                        gaps.append(gap)
                    else:
                        j = int(self._rng.random() * self._gap_n)
                        if j < GAP_SAMPLE:
                            gaps[j] = gap
                    if len(top) < 10 or gap > top[0][0]:
                        item = (gap, row[0], Gap(gap, p_line, row[0], p_ts, ts))
                        if len(top) < 10:
                            heapq.heappush(top, item)
                        else:
                            heapq.heapreplace(top, item)
            p_t, p_line, p_ts = t, row[0], ts
        if self._last_error is not last_error:      # a new last error in this block: its index
            found = self._last_error
            for k in range(len(rows) - 1, -1, -1):
                if rows[k] is found:
                    self._last_error_index = base + k
                    break
        if p_t is not None:
            self._prev = (p_t, p_line, p_ts)
        self._first_t, self._last_t = f_t, l_t
        self.with_ts += with_ts

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
