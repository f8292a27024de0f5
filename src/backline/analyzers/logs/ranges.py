"""One large log analysed in byte ranges, in parallel, merged into the single-pass result.

:func:`plan_ranges` cuts an uncompressed file into about ``parts`` byte ranges,
each starting at a line that begins a record (it matches the file's header and
does not start with a blank), so a multi-line record (a stack trace) is never cut.
Every range is read by :func:`scan_range` in a process of its own (a local
process pool, or a Dask worker: :mod:`backline.analyzers.cluster`), with its own
template miner; the first line's number comes from counting the newlines before
the range (:func:`count_newlines`, also one task per range).

The merge (:func:`backline.analyzers.logs.text_analyzer.merge_ranges`) is exact:

* templates: the miner's clusters depend only on the distinct masked shapes in
  the order they first occur, so the ranges' shapes are placed into one miner
  range by range (:meth:`.miner.TemplateMiner.learn_shape`) - the templates and
  their stable ids are those of one pass;
* statistics add up (:meth:`.stats.LogStats.absorb`; gaps across a boundary are
  computed from each range's first and last time stamp), events and stack traces
  are kept in file order up to the same caps, and the records tables are joined.

Where a range cannot know what the pass before it would have known, the file is
analysed in one pass instead (the result says why, :attr:`RangePart.inexact`):
a header format learned within a range (the layout changed), or a miner cap
reached (free text).  A trace logged one record per line that is still open at a
range's end is completed by that range from the lines after it (a look-ahead of a
few hundred lines at most), and the next range drops the traces it would have
started on those lines.  Files whose
stamps carry no year (syslog, time of day only) are not split: their year or
date is inferred from the lines before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backline.analyzers.logs.formats import LogFormat
from backline.analyzers.logs.timestamps import ORDERS

#: Files smaller than this are read in one pass (splitting costs a process start and a merge).
SPLIT_MIN_BYTES = 64 << 20
#: How far past a nominal cut a record start is looked for.
SEARCH_BYTES = 16 << 20


@dataclass(frozen=True, slots=True)
class ByteRange:
    """One range of a file: bytes ``[start, end)``; ``first_line`` is the number of its first line."""

    index: int
    start: int
    end: int
    first_line: int = 1
    last: bool = False


@dataclass(slots=True)
class RangePart:
    """What :func:`scan_range` found in one range (picklable; sent back to the merge)."""

    index: int
    shapes: list[str] = field(default_factory=list)        # masked shape per local shape number
    stats: Any = None                                      # LogStats, local shape numbers
    events: list = field(default_factory=list)             # first ``max_events`` events
    events_total: int = 0
    traces: list = field(default_factory=list)             # log.stack_trace facts, first 200
    crash_calls: list = field(default_factory=list)        # LogCrashes.add arguments, in order
    ends: Any = None                                       # deaths.Deaths of the range
    read: dict = field(default_factory=dict)               # reader counts
    records_file: str = ""                                 # raw records (local shapes), or ''
    taken: set = field(default_factory=set)                # lines of the next range in this one's traces
    inexact: str = ""                                      # why the merge would not be exact


def splittable(fmt: LogFormat, compression: str, encoding: str, cr_only: bool) -> str:
    """'' when a file of this header format can be read in byte ranges, else why not."""
    if compression:
        return "compressed"
    if encoding not in ("utf-8", "utf-8-sig", "utf-8-mixed") or cr_only:
        return f"encoding {encoding}"
    if not fmt.compiled or fmt.name in ("plain", "columns"):
        return f"header format {fmt.name}"
    for f in (fmt, *fmt.alternates):
        order = ORDERS.get(f.ts_kind, "")
        if not order or not (set(order) & set("YyELUn")):
            return "time stamps without a year"
    return ""


def _record_start(fmt: LogFormat, line: bytes) -> bool:
    if not line or line[:1] in (b" ", b"\t"):
        return False
    text = line.decode("utf-8", "replace").rstrip("\r")
    return any(f.regex.match(text) for f in (fmt, *fmt.alternates))


def plan_ranges(path: str | Path, fmt: LogFormat, parts: int) -> list[ByteRange]:
    """Cut ``path`` into at most ``parts`` ranges at record starts (``first_line`` not set
    yet: see :func:`count_newlines`).  One range when no cut point is found."""
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as fh:
        for i in range(1, parts):
            pos = max(size * i // parts, cuts[-1] + 1)
            fh.seek(pos - 1)
            data = fh.read(min(SEARCH_BYTES, size - pos + 1))
            at = 0
            found = -1
            while True:
                nl = data.find(b"\n", at)
                if nl < 0 or nl + 1 >= len(data):
                    break
                end = data.find(b"\n", nl + 1)
                if end < 0:
                    break
                if _record_start(fmt, data[nl + 1: min(end, nl + 1 + 4096)]):
                    found = pos - 1 + nl + 1
                    break
                at = nl + 1
            if found > cuts[-1]:
                cuts.append(found)
    cuts.append(size)
    n = len(cuts) - 1
    return [ByteRange(i, cuts[i], cuts[i + 1], last=i == n - 1) for i in range(n)]


def count_newlines(path: str | Path, start: int, end: int) -> int:
    """Newlines in bytes ``[start, end)`` of ``path``."""
    n = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            data = fh.read(min(8 << 20, left))
            if not data:
                break
            left -= len(data)
            n += data.count(b"\n")
    return n


def number_ranges(ranges: list[ByteRange], newlines: list[int]) -> list[ByteRange]:
    """The ranges with their first line numbers, from the newlines counted in each."""
    out = []
    line = 1
    for r, n in zip(ranges, newlines):
        out.append(ByteRange(r.index, r.start, r.end, line, r.last))
        line += n
    return out
