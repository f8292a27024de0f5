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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from backline.analyzers.logs.blocks import NO_TS, RecordBlock
from backline.analyzers.logs.records import LogRecord
from backline.model import Severity

#: Width of a histogram bucket, seconds (doubled whenever a template's
#: histogram would hold more than MAX_BUCKETS buckets).
BUCKET_S = 60
MAX_BUCKETS = 8192
EXAMPLES = 3
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_I64_MAX = np.iinfo(np.int64).max


class GapHistogram:
    """Gaps between consecutive records on a log scale (1/16 octave buckets, plus zero
    gaps): the file's usual rhythm in bounded memory, the same however the file is cut
    into blocks or ranges (histograms add up).

    >>> h = GapHistogram(); h.add(np.array([0, 1_000_000, 1_000_000, 2_000_000, 60_000_000]))
    >>> round(h.quantile(0.5), 2), round(h.quantile(0.99), 1)
    (1.02, 60.0)
    """

    STEPS = 16

    def __init__(self) -> None:
        self.zero = 0
        self.buckets: dict[int, int] = {}

    def add(self, gaps_us: np.ndarray) -> None:
        pos = gaps_us[gaps_us > 0]
        self.zero += len(gaps_us) - len(pos)
        if len(pos):
            k, c = np.unique(np.floor(np.log2(pos / 1e6) * self.STEPS).astype(np.int64), return_counts=True)
            for a, v in zip(k.tolist(), c.tolist()):
                self.buckets[a] = self.buckets.get(a, 0) + v

    def merge(self, other: "GapHistogram") -> None:
        self.zero += other.zero
        for a, v in other.buckets.items():
            self.buckets[a] = self.buckets.get(a, 0) + v

    def quantile(self, q: float) -> float | None:
        total = self.zero + sum(self.buckets.values())
        if not total:
            return None
        rank = min(total - 1, int(q * total))
        if rank < self.zero:
            return 0.0
        seen = self.zero
        for a in sorted(self.buckets):
            seen += self.buckets[a]
            if seen > rank:
                return 2 ** ((a + 0.5) / self.STEPS)
        return None


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
        if other.severity > self.severity or (other.severity == self.severity and not self.level):
            self.severity, self.level = other.severity, other.level or self.level
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
        self._prev: tuple[int, int] | None = None       # (us, line) of the last record with a time
        self._first_rec: tuple[int, int] | None = None  # (us, line) of the first record with a time
        self._gaps = GapHistogram()
        self._top_gaps: list[tuple[float, int, Gap]] = []
        self.bucket_s = BUCKET_S

    def add(self, rec: LogRecord, shape: int) -> None:
        """Account one record whose head line has miner shape ``shape``."""
        self.add_rows([(rec.line, rec.end_line, rec.ts, rec.ts_quality, rec.level, rec.severity,
                        rec.component, rec.pid, rec.thread, rec.host, rec.message, rec.text)], [shape])

    def add_rows(self, rows: Sequence[tuple], shapes: Sequence[int]) -> None:
        """Account records given as rows (:data:`~.records.ROW_FIELDS` order) with their shapes."""
        if rows:
            self.add_block(RecordBlock.from_rows(list(rows), list(shapes)))

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

    def add_block(self, b: RecordBlock) -> None:
        """Account a block of records (columns, :class:`.blocks.RecordBlock`): array
        operations per block, Python per shape and per reported record only."""
        n = b.n
        if not n:
            return
        base = self.records
        self.records += n
        sev, shape, ts, line = b.severity, b.shape, b.ts, b.line
        self._last = b.row(n - 1)
        for v, c in zip(*np.unique(sev, return_counts=True)):
            k = Severity(int(v))
            self.severity_counts[k] = self.severity_counts.get(k, 0) + int(c)
        err = np.flatnonzero(sev >= Severity.HIGH)
        if len(err):
            if self._first_error is None:
                self._first_error = b.row(int(err[0]))
            self._last_error = b.row(int(err[-1]))
            self._last_error_index = base + int(err[-1])
        levels = b.strings["level"]
        # per shape (records sorted by shape): count, first line, examples, severity and
        # level, error numbers, time range - reductions over the sorted runs
        order = np.argsort(shape, kind="stable")
        uniq, starts, counts = np.unique(shape[order], return_index=True, return_counts=True)
        sev_o, ts_o = sev[order], ts[order]
        has_o = ts_o != NO_TS
        max_sev = np.maximum.reduceat(sev_o, starts)
        t_lo = np.minimum.reduceat(np.where(has_o, ts_o, _I64_MAX), starts)
        t_hi = np.maximum.reduceat(np.where(has_o, ts_o, NO_TS), starts)
        err_o = sev_o >= Severity.HIGH
        n_err = np.add.reduceat(err_o.astype(np.int64), starts)
        e_lo = np.minimum.reduceat(np.where(err_o & has_o, ts_o, _I64_MAX), starts)
        e_hi = np.maximum.reduceat(np.where(err_o & has_o, ts_o, NO_TS), starts)
        shapes_d = self.shapes
        for j, (s_, st0, c) in enumerate(zip(uniq.tolist(), starts.tolist(), counts.tolist())):
            st = shapes_d.get(s_)
            if st is None:
                st = shapes_d[s_] = TemplateStats("", first_line=int(line[order[st0]]))
            need = EXAMPLES - len(st.examples)
            if need > 0:
                st.examples.extend((int(line[i]), b.strings["head"][int(i)].as_py())
                                   for i in order[st0:st0 + min(c, need)])
            st.count += c
            top = int(max_sev[j])
            if top > st.severity or (top == st.severity and not st.level):
                idx = order[st0:st0 + c]
                st.severity, st.level = Severity(top), levels[int(idx[int(np.argmax(sev[idx] == top))])].as_py()
            ne = int(n_err[j])
            if ne:
                need = EXAMPLES - len(st.err_examples)
                if not st.err_count or need > 0:
                    idx = order[st0:st0 + c]
                    e = idx[sev[idx] >= Severity.HIGH]
                    if not st.err_count:
                        st.err_first_line = int(line[e[0]])
                    if need > 0:
                        st.err_examples.extend((int(line[i]), b.text(int(i)).split("\n", 1)[0][:500])
                                               for i in e[:need])
                st.err_count += ne
                if int(e_hi[j]) != NO_TS:
                    lo, hi = b.dt_of(int(e_lo[j])), b.dt_of(int(e_hi[j]))
                    if st.err_first_ts is None or lo < st.err_first_ts:
                        st.err_first_ts = lo
                    if st.err_last_ts is None or hi > st.err_last_ts:
                        st.err_last_ts = hi
            hi = int(t_hi[j])
            if hi != NO_TS:
                lo = int(t_lo[j])
                if lo / 1e6 < st.first_t:
                    st.first_t, st.first_ts = lo / 1e6, b.dt_of(lo)
                if hi / 1e6 > st.last_t:
                    st.last_t, st.last_ts = hi / 1e6, b.dt_of(hi)
        # per-template histograms: one count of (shape, bucket) pairs for the block
        if has_o.any():
            width = self.bucket_s
            keys = shape[ts != NO_TS].astype(np.int64) * (1 << 40) + (ts[ts != NO_TS] // 1_000_000) // width
            kk, kc = np.unique(keys, return_counts=True)
            for k, v in zip(kk.tolist(), kc.tolist()):
                s_, bk = k >> 40, (k & ((1 << 40) - 1))
                if bk >= 1 << 39:
                    bk -= 1 << 40                 # times before 1970
                    s_ += 1
                bs = shapes_d[s_].buckets
                bs[bk] = bs.get(bk, 0) + v
            if any(len(st.buckets) > MAX_BUCKETS for st in shapes_d.values()):
                self._coarsen()
        # file-wide time numbers: range, gaps between consecutive records with a time stamp
        has = ts != NO_TS
        t = ts[has]
        if not len(t):
            return
        self.with_ts += len(t)
        tl = line[has]
        lo, hi = int(t.min()), int(t.max())
        if lo / 1e6 < self._first_t:
            self._first_t, self.first_ts = lo / 1e6, b.dt_of(lo)
        if hi / 1e6 > self._last_t:
            self._last_t, self.last_ts = hi / 1e6, b.dt_of(hi)
        if self._first_rec is None:
            self._first_rec = (int(t[0]), int(tl[0]))
        if self._prev is not None:
            t = np.concatenate(([self._prev[0]], t))
            tl = np.concatenate(([self._prev[1]], tl))
        self._prev = (int(t[-1]), int(tl[-1]))
        if len(t) < 2:
            return
        gaps = np.diff(t)
        back = gaps < 0
        self.ts_backwards += int(back.sum())
        fwd = gaps[~back]
        self._gaps.add(fwd)
        if len(fwd):
            # the 10 largest by (seconds, earlier line first): ties kept in full, then cut
            k = min(10, len(gaps))
            thr = np.partition(gaps, len(gaps) - k)[len(gaps) - k]
            cand = np.flatnonzero(gaps >= max(thr, 0))
            if len(cand) > 10:
                cand = cand[np.lexsort((cand, -gaps[cand]))[:10]]
            for j in cand.tolist():
                self._push_gap(int(gaps[j]) / 1e6, int(tl[j]), int(tl[j + 1]), int(t[j]), int(t[j + 1]))

    def _push_gap(self, sec: float, line_before: int, line_after: int, us_before: int, us_after: int) -> None:
        """Keep a gap among the 10 largest (ties: the earlier one wins, so the result is the
        same however the records are cut into blocks or byte ranges)."""
        top = self._top_gaps
        key = (sec, -line_after)
        if len(top) < 10 or key > top[0][:2]:
            item = (sec, -line_after, Gap(sec, line_before, line_after,
                                          _EPOCH + timedelta(microseconds=us_before),
                                          _EPOCH + timedelta(microseconds=us_after)))
            if len(top) < 10:
                heapq.heappush(top, item)
            else:
                heapq.heapreplace(top, item)

    def absorb(self, other: "LogStats", shape_map: dict[int, int]) -> None:
        """Add the statistics of the records that follow this one's in the file (the next
        byte range, :mod:`.ranges`); ``shape_map`` maps the other's shape numbers to this
        one's.  The result equals one pass over both parts."""
        base = self.records
        self.records += other.records
        for k, c in other.severity_counts.items():
            self.severity_counts[k] = self.severity_counts.get(k, 0) + c
        if other._last_error is not None:
            if self._first_error is None:
                self._first_error = other._first_error
            self._last_error = other._last_error
            self._last_error_index = base + other._last_error_index
        if other._last is not None:
            self._last = other._last
        while self.bucket_s < other.bucket_s:
            self._coarsen()
        for si, st in other.shapes.items():
            if st.count == 0:
                continue
            w = other.bucket_s
            buckets = st.buckets
            while w < self.bucket_s:                     # the other's histograms to this width
                merged: dict[int, int] = {}
                for b, c in buckets.items():
                    merged[b // 2] = merged.get(b // 2, 0) + c
                buckets, w = merged, w * 2
            st.buckets = buckets
            gi = shape_map[si]
            mine = self.shapes.get(gi)
            if mine is None:
                self.shapes[gi] = st
            else:
                mine.merge(st)
        if any(len(st.buckets) > MAX_BUCKETS for st in self.shapes.values()):
            self._coarsen()
            while any(len(st.buckets) > MAX_BUCKETS for st in self.shapes.values()):
                self._coarsen()
        if other.with_ts:
            self.with_ts += other.with_ts
            if other._first_t < self._first_t:
                self._first_t, self.first_ts = other._first_t, other.first_ts
            if other._last_t > self._last_t:
                self._last_t, self.last_ts = other._last_t, other.last_ts
            if self._prev is not None and other._first_rec is not None:
                (u0, l0), (u1, l1) = self._prev, other._first_rec
                if u1 < u0:
                    self.ts_backwards += 1
                else:
                    self._gaps.add(np.array([u1 - u0], np.int64))
                    self._push_gap((u1 - u0) / 1e6, l0, l1, u0, u1)
            if self._first_rec is None:
                self._first_rec = other._first_rec
            self._prev = other._prev
        self.ts_backwards += other.ts_backwards
        self._gaps.merge(other._gaps)
        for sec, neg, g in other._top_gaps:
            self._push_gap(sec, g.line_before, g.line_after,
                           int((g.ts_before - _EPOCH) / timedelta(microseconds=1)),
                           int((g.ts_after - _EPOCH) / timedelta(microseconds=1)))

    def _coarsen(self) -> None:
        """Double the bucket width of every histogram (memory stays bounded)."""
        self.bucket_s *= 2
        for st in self.shapes.values():
            merged: dict[int, int] = {}
            for b, c in st.buckets.items():
                merged[b // 2] = merged.get(b // 2, 0) + c
            st.buckets = merged

    def gap_quantile(self, q: float) -> float | None:
        """Quantile ``q`` of the gaps between records (seconds; within 1/16 octave)."""
        return self._gaps.quantile(q)

    def largest_gaps(self) -> list[Gap]:
        """The largest gaps, largest first."""
        return [g for _, _, g in sorted(self._top_gaps, key=lambda t: (-t[0], -t[1]))]
