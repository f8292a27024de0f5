"""Blocks of records as columns: what the compiled engine hands over, per 1 MiB of log.

:class:`RecordBlock` wraps the buffers of :meth:`._engine.RecordEngine.take_records`
as NumPy arrays (line, last line, time stamp in microseconds, its quality, severity,
shape) and Arrow string arrays (level, component, pid, thread, host, message, head
line), without a Python object per record.  :meth:`RecordBlock.row` makes the
tuple of one record (:data:`.records.ROW_FIELDS` order) for the few records that
are reported.  JSON-lines logs, split in Python, come as rows and are turned into
the same block (:meth:`RecordBlock.from_rows`), so everything after the reader
has one implementation.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from backline.model import Severity, TsQuality

STRINGS = ("level", "component", "pid", "thread", "host", "message", "head")
QUALITY = (TsQuality.NONE, TsQuality.EXACT, TsQuality.INFERRED_YEAR, TsQuality.INFERRED)
_Q_CODE = {q: i for i, q in enumerate(QUALITY)}
_SEVERITIES = tuple(Severity)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
NO_TS = np.iinfo(np.int64).min
#: Longest message kept in a block (characters; the engine keeps as many bytes).
MAX_MESSAGE = 4096


def to_utc_us(us: np.ndarray, zoned: np.ndarray, tz: ZoneInfo | timezone) -> np.ndarray:
    """Wall-clock microseconds of zone ``tz`` (where not ``zoned``) as UTC microseconds;
    the offset is looked up once per hour of wall time."""
    if tz is timezone.utc or getattr(tz, "key", "") in ("UTC", "Etc/UTC") or not len(us):
        return us
    local = ~zoned.astype(bool) & (us != NO_TS)
    if not local.any():
        return us
    hours = us[local] // 3_600_000_000
    uniq, inv = np.unique(hours, return_inverse=True)
    offs = np.empty(len(uniq), np.int64)
    for i, h in enumerate(uniq.tolist()):
        wall = (datetime(1970, 1, 1) + timedelta(hours=h)).replace(tzinfo=tz)
        off = wall.utcoffset() or timedelta(0)
        offs[i] = int(off.total_seconds()) * 1_000_000
    out = us.copy()
    out[local] = us[local] - offs[inv]
    return out


class RecordBlock:
    """One block of records as columns (see module docstring)."""

    __slots__ = ("n", "line", "end_line", "ts", "ts_quality", "severity", "shape", "strings", "texts",
                 "_text_of")

    def __init__(self, n: int, line: np.ndarray, end_line: np.ndarray, ts: np.ndarray, ts_quality: np.ndarray,
                 severity: np.ndarray, shape: np.ndarray, strings: dict[str, pa.Array],
                 texts: list[tuple[int, str]]):
        self.n = n
        self.line, self.end_line, self.ts = line, end_line, ts     # ts: UTC microseconds, NO_TS = none
        self.ts_quality, self.severity, self.shape = ts_quality, severity, shape
        self.strings = strings
        self.texts = texts                                         # (index, whole text) of multi-line records
        self._text_of: dict[int, str] | None = None

    @classmethod
    def from_engine(cls, d: dict, tz: ZoneInfo | timezone) -> "RecordBlock":
        n = d["n"]
        ts = np.frombuffer(d["ts"], np.int64)
        q = np.frombuffer(d["ts_quality"], np.int8)
        ts = np.where(q > 0, ts, NO_TS)
        ts = to_utc_us(ts, np.frombuffer(d["zoned"], np.int8), tz)
        strings = {k: pa.StringArray.from_buffers(n, pa.py_buffer(d[k][0]), pa.py_buffer(d[k][1]))
                   for k in STRINGS}
        return cls(n, np.frombuffer(d["line"], np.int64), np.frombuffer(d["end_line"], np.int64), ts, q,
                   np.frombuffer(d["severity"], np.int8), np.frombuffer(d["shape"], np.int32), strings,
                   d["texts"])

    @classmethod
    def from_rows(cls, rows: list[tuple], shapes: list[int]) -> "RecordBlock":
        """Rows in :data:`.records.ROW_FIELDS` order (the JSON-lines path) as a block."""
        n = len(rows)
        ts = np.array([NO_TS if r[2] is None else
                       (r[2] - _EPOCH) // timedelta(microseconds=1) for r in rows], np.int64)
        strings = {k: pa.array([r[i] for r in rows], pa.string())
                   for k, i in (("level", 4), ("component", 6), ("pid", 7), ("thread", 8), ("host", 9))}
        strings["message"] = pa.array([r[10][:MAX_MESSAGE] for r in rows], pa.string())
        strings["head"] = pa.array([r[11].split("\n", 1)[0][:500] for r in rows], pa.string())
        return cls(n, np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int64), ts,
                   np.array([_Q_CODE[r[3]] for r in rows], np.int8), np.array([int(r[5]) for r in rows], np.int8),
                   np.array(shapes, np.int32), strings, [(i, r[11]) for i, r in enumerate(rows) if r[1] > r[0]])

    def text(self, i: int) -> str:
        """The whole text of record ``i`` (head line and continuation lines)."""
        if self._text_of is None:
            self._text_of = dict(self.texts)
        t = self._text_of.get(i)
        return t if t is not None else self.strings["head"][i].as_py()

    def dt(self, i: int) -> datetime | None:
        """The time stamp of record ``i``."""
        return self.dt_of(int(self.ts[i]))

    @staticmethod
    def dt_of(us: int) -> datetime | None:
        """UTC microseconds as an aware datetime (``None`` for :data:`NO_TS`)."""
        return None if us == NO_TS else _EPOCH + timedelta(microseconds=us)

    def row(self, i: int) -> tuple:
        """Record ``i`` as a tuple in :data:`.records.ROW_FIELDS` order."""
        s = self.strings
        return (int(self.line[i]), int(self.end_line[i]), self.dt(i), QUALITY[self.ts_quality[i]],
                s["level"][i].as_py(), _SEVERITIES[self.severity[i]], s["component"][i].as_py(),
                s["pid"][i].as_py(), s["thread"][i].as_py(), s["host"][i].as_py(), s["message"][i].as_py(),
                self.text(i))

    def rows(self, idx) -> list[tuple]:
        return [self.row(int(i)) for i in idx]
