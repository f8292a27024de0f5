"""Log views: a log at one line, with context, filters and search.

:func:`log_view` reads the Parquet records the ``logs.text`` analyzer wrote
(kept by :mod:`.store`) with DuckDB: the record at the line, the records
before and after it that pass the filters (level, template, search text), the
number of matching records and what the filters can choose from.  Values are
bound as parameters, never pasted into SQL.

:func:`text_lines` shows the lines of any text file around one line (crash
traces, configuration files: text that has no records table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from backline.analyzers.logs.reader import open_log
from backline.analyzers.logs.store import Records, open_records
from backline.errors import UsageError

#: Most records shown on either side of the line.
MAX_CONTEXT = 500
MAX_SEARCH = 200
MAX_TEMPLATES = 30
_COLUMNS = "line, end_line, ts, level, severity, component, template_id, template, message"


@dataclass(frozen=True, slots=True)
class LogQuery:
    """What a person asks of a log view.  ``levels`` and ``template`` filter, ``search``
    finds text in messages (case-insensitive), ``before``/``after`` are record counts."""

    levels: tuple[str, ...] = ()
    template: str | None = None
    search: str | None = None
    before: int = 25
    after: int = 25

    def checked(self) -> "LogQuery":
        """The query with its bounds applied (counts 0..MAX_CONTEXT; search text trimmed).

        >>> LogQuery(before=10_000, search="  disk full ").checked()
        LogQuery(levels=(), template=None, search='disk full', before=500, after=25)
        """
        search = (self.search or "").strip()[:MAX_SEARCH] or None
        levels = tuple(dict.fromkeys(lv.strip()[:40] for lv in self.levels if lv and lv.strip()))[:20]
        return LogQuery(levels, (self.template or "").strip()[:64] or None, search,
                        max(0, min(MAX_CONTEXT, self.before)), max(0, min(MAX_CONTEXT, self.after)))

    @property
    def filtered(self) -> bool:
        return bool(self.levels or self.template or self.search)

    def where(self) -> tuple[str, list[Any]]:
        """The filters as SQL conditions with their parameters."""
        parts, params = [], []
        if self.levels:
            parts.append(f"level IN ({', '.join('?' for _ in self.levels)})")
            params += list(self.levels)
        if self.template:
            parts.append("template_id = ?")
            params.append(self.template)
        if self.search:
            parts.append("strpos(lower(message), lower(?)) > 0")
            params.append(self.search)
        return (" AND ".join(parts) or "TRUE"), params


@dataclass(slots=True)
class _Rows:
    names: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)


def _record(names: list[str], row: tuple) -> dict[str, Any]:
    rec = dict(zip(names, row))
    ts = rec.get("ts")
    rec["ts"] = ts.isoformat() if isinstance(ts, datetime) else ts
    return rec


def log_view(records: Path, line: int, q: LogQuery) -> dict[str, Any]:
    """The log around ``line`` (see the module docstring).

    Returns ``{"line", "target", "records", "matching", "total", "levels",
    "templates", "query"}``; each record is a dict of the ``records`` columns
    with ``target`` true for the record that holds ``line``.
    """
    with open_records([records]) as rec:
        return _log_view(rec, line, q.checked())


def _log_view(rec: Records, line: int, q: LogQuery) -> dict[str, Any]:
    where, params = q.where()

    def run(sql: str, args: list[Any]) -> _Rows:
        names, rows = rec.query(sql, params=args)
        return _Rows(names, rows)

    hit = run(f"SELECT {_COLUMNS} FROM records WHERE line <= ? AND end_line >= ? ORDER BY line DESC LIMIT 1",
              [line, line])
    target = _record(hit.names, hit.rows[0]) if hit.rows else None
    start = target["line"] if target else line
    end = target["end_line"] if target else line - 1
    before = run(f"SELECT {_COLUMNS} FROM records WHERE line < ? AND {where} ORDER BY line DESC LIMIT ?",
                 [start, *params, q.before]) if q.before else _Rows()
    after = run(f"SELECT {_COLUMNS} FROM records WHERE line > ? AND {where} ORDER BY line LIMIT ?",
                [end, *params, q.after]) if q.after else _Rows()
    rows = [dict(_record(before.names, r), target=False) for r in reversed(before.rows)]
    if target is not None:
        rows.append(dict(target, target=True))
    rows += [dict(_record(after.names, r), target=False) for r in after.rows]

    counts = run(f"SELECT count(*) AS total, count(*) FILTER (WHERE {where}) AS matching FROM records", params)
    total, matching = counts.rows[0]
    levels = run("SELECT level, count(*) AS n FROM records GROUP BY level ORDER BY n DESC, level LIMIT 50", [])
    templates = run("SELECT template_id, any_value(template) AS template, count(*) AS n FROM records "
                    "GROUP BY template_id ORDER BY n DESC, template_id LIMIT ?", [MAX_TEMPLATES])
    tpl = [{"id": t, "template": text, "count": n} for t, text, n in templates.rows]
    wanted = {x for x in (q.template, target and target["template_id"]) if x}
    for tid in wanted - {t["id"] for t in tpl}:
        extra = run("SELECT template_id, any_value(template), count(*) FROM records WHERE template_id = ? "
                    "GROUP BY template_id", [tid])
        tpl += [{"id": t, "template": text, "count": n} for t, text, n in extra.rows]
    return {"line": line, "target": target, "records": rows, "matching": matching, "total": total,
            "levels": [{"level": lv, "count": n} for lv, n in levels.rows],
            "templates": tpl,
            "query": {"levels": list(q.levels), "template": q.template, "search": q.search,
                      "before": q.before, "after": q.after}}


def text_lines(path: Path, line: int, context: int = 40) -> dict[str, Any]:
    """Lines ``line - context`` .. ``line + context`` of a text file (any encoding or
    compression :func:`~backline.analyzers.logs.reader.open_log` reads).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.txt")
    >>> _ = open(p, "w").write("a\\nb\\nc\\nd\\n")
    >>> [(l["number"], l["text"], l["target"]) for l in text_lines(p, 2, context=1)["lines"]]
    [(1, 'a', False), (2, 'b', True), (3, 'c', False)]
    """
    if line < 1:
        raise UsageError(f"line {line} is not a line number")
    context = max(0, min(MAX_CONTEXT, context))
    lo, hi = line - context, line + context
    out = []
    src = open_log(path)
    for ln in src:
        if ln.number > hi:
            break
        if ln.number >= lo:
            out.append({"number": ln.number, "text": ln.text, "target": ln.number == line})
    return {"line": line, "lines": out, "found": any(x["target"] for x in out),
            "encoding": src.stats.encoding}


def record_lines(path: Path, first: int, last: int, mark: int, limit: int = 200) -> list[dict[str, Any]]:
    """Lines ``first`` .. ``last`` of a text file (at most ``limit``), ``mark`` flagged: the
    whole text of a multi-line record (a stack trace), whose table row shows only its message.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.log")
    >>> _ = open(p, "w").write("a\\nTraceback:\\n  x\\nb\\n")
    >>> [(l["number"], l["target"]) for l in record_lines(p, 2, 3, 3)]
    [(2, False), (3, True)]
    """
    out = []
    for ln in open_log(path):
        if ln.number > last or len(out) >= limit:
            break
        if ln.number >= first:
            out.append({"number": ln.number, "text": ln.text, "target": ln.number == mark})
    return out


def evtx_record(path: Path, record_id: int, name: str) -> dict[str, Any] | None:
    """The fields of event record ``record_id`` of a Windows event log (None when absent).

    Reads the file with :func:`~backline.analyzers.logs.evtx_analyzer.read_evtx`, the
    analyzer's reader, until the record is found.
    """
    from backline.analyzers.logs.evtx_analyzer import LEVELS, read_evtx

    problems: list[str] = []
    for rec in read_evtx(path, name, problems):
        if rec.record_id != record_id:
            continue
        sev = LEVELS.get(rec.level)
        return {"record_id": rec.record_id, "time": rec.ts.isoformat() if rec.ts else None,
                "provider": rec.provider, "event_id": rec.event_id, "level": rec.level,
                "severity": sev.label if sev else None, "channel": rec.channel, "computer": rec.computer,
                "data": rec.data, "problems": problems[:5]}
    return None
