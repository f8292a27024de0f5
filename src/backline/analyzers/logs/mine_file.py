"""Templates of a whole log file through the compiled per-line path.

:func:`mine_file` learns the file's header format from its first lines, then
streams every line through :class:`._engine.LineEngine` (line split, header,
time stamp, template key lookup, all compiled); Python runs only for a
message key not seen before (masking and clustering, :mod:`.miner`) and for
a template's first line.  It returns the template table and, when asked, the
shape of every line in a temporary file (4 bytes a line), so the per-line
output is written without keeping lines in memory.

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "a.log")
>>> _ = open(p, "w").write("".join(f"2024-01-02 03:04:{i:02d},1 INFO [m] a.B: took {i} ms\\n" for i in range(9)))
>>> r = mine_file(p)
>>> [(row[0], t) for t, row in r.rows.items()]
[(9, 'took <*> ms')]
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from pathlib import Path
from typing import BinaryIO, Callable
from zoneinfo import ZoneInfo

from backline.analyzers.logs.engine import SAMPLE_LINES, engine_blocks, line_engine
from backline.analyzers.logs.formats import LogFormat, detect_format
from backline.analyzers.logs.miner import TemplateMiner
from backline.analyzers.logs.reader import open_log

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class MinedFile:
    """What :func:`mine_file` found."""

    fmt: LogFormat
    miner: TemplateMiner
    rows: dict[str, list] = field(default_factory=dict)   # template -> [count, first ts, last ts, level, example]
    shape_templates: list[str] = field(default_factory=list)
    shapes: BinaryIO | None = None       # int32 shape per line (-1: no row), when keep_lines
    shapes_size: int = 0
    warnings: list[str] = field(default_factory=list)
    lines: int = 0


def to_datetime(us: int | None, zoned: bool, tz: ZoneInfo | timezone) -> datetime | None:
    """A time stamp of the engine (microseconds) as an aware UTC datetime."""
    if us is None:
        return None
    try:
        dt = _EPOCH + timedelta(microseconds=us)
        if not zoned and getattr(tz, "key", "UTC") not in ("UTC", "Etc/UTC") and tz is not timezone.utc:
            dt = dt.replace(tzinfo=None).replace(tzinfo=tz).astimezone(timezone.utc)
    except OverflowError:
        return None
    return dt


def mine_file(path: str | Path, tz: ZoneInfo | timezone = timezone.utc, *, keep_lines: bool = False,
              progress: Callable[[int], None] | None = None) -> MinedFile:
    """Mine the templates of one log file (see module docstring)."""
    src = open_log(path)
    sample = [t for _, t in islice(src.numbered(), SAMPLE_LINES)]
    fmt = detect_format(sample)
    miner = TemplateMiner()
    info: dict[int, tuple[str, str]] = {}

    def on_new(si: int, line: int, level: bytes, msg: bytes) -> None:
        m = msg.decode("utf-8", "replace")
        info[si] = (fmt.level_of(level.decode("utf-8", "replace"), m) if level or fmt.name == "access-log"
                    else "", f"{line}: {m[:120]}")

    out = MinedFile(fmt, miner)
    if keep_lines:
        out.shapes = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    if not fmt.compiled:
        return _mine_python(src, fmt, miner, out, tz, keep_lines)
    engine = line_engine(fmt, miner.keys, path, keep_shapes=keep_lines, on_new=on_new, tz=tz)
    for _ in engine_blocks(src, engine, [fmt]):
        if out.shapes is not None:
            out.shapes.write(engine.take_shapes())
        if progress is not None:
            progress(src.stats.bytes_read)
    out.lines = src.stats.lines
    zoned = engine.all_zoned and engine.any_zoned
    for si, (level, example) in info.items():
        t = miner.template_of_shape(si)
        _, first, last = engine.shape_stats(si)
        first, last = to_datetime(first, zoned, tz), to_datetime(last, zoned, tz)
        _add_row(out.rows, t, miner.count_of_shape(si), first, last, level, example)
    return _finish(out, src)


def _add_row(rows: dict[str, list], t: str, count: int, first, last, level: str, example: str) -> None:
    r = rows.get(t)
    if r is None:
        rows[t] = [count, first, last, level, example]
    else:
        r[0] += count
        r[1] = min((x for x in (r[1], first) if x), default=None)
        r[2] = max((x for x in (r[2], last) if x), default=None)


def _finish(out: MinedFile, src) -> MinedFile:
    out.shape_templates = [out.miner.template_of_shape(si) for si in range(out.miner.shapes)]
    if out.shapes is not None:
        out.shapes_size = out.shapes.tell()
    out.warnings = list(src.stats.warnings)
    return out


def _mine_python(src, fmt: LogFormat, miner: TemplateMiner, out: MinedFile, tz, keep_lines: bool) -> MinedFile:
    """JSON-lines logs: each line is split by :meth:`LogFormat.split` (JSON parsing), the
    messages are looked up in the same key table, block by block."""
    import array

    from backline.analyzers.logs.timestamps import FileClock, TsParser

    parser = TsParser(tz, clock=FileClock(str(src.path), tz))
    stats: dict[int, list] = {}
    buf: list[tuple[int, str, str, str, str]] = []
    next_line = 1

    def flush() -> None:
        nonlocal next_line
        shapes = miner.add_block([b[1].replace("\n", " ") for b in buf])
        per_line = array.array("i")
        for (line, msg, lvl, kind, tstext), si in zip(buf, shapes):
            per_line.extend([-1] * (line - next_line))      # lines the reader skipped (binary)
            next_line = line + 1
            ts = parser.parse(kind, tstext)[0] if tstext else None
            r = stats.get(si)
            if r is None:
                stats[si] = [ts, ts, lvl, f"{line}: {msg[:120]}"]
            elif ts is not None:
                r[0] = ts if r[0] is None or ts < r[0] else r[0]
                r[1] = ts if r[1] is None or ts > r[1] else r[1]
            per_line.append(si)
        if out.shapes is not None:
            out.shapes.write(per_line.tobytes())
        buf.clear()

    for n, text in src.numbered():
        h = fmt.split(text)
        buf.append((n, text, "", "", "") if h is None else (n, h.message, h.level, h.ts_kind, h.ts_text))
        if len(buf) >= 8192:
            flush()
    flush()
    out.lines = src.stats.lines
    for si, (first, last, lvl, ex) in stats.items():
        _add_row(out.rows, miner.template_of_shape(si), miner.count_of_shape(si), first, last, lvl, ex)
    return _finish(out, src)
