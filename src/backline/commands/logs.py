"""``backline logs``: read logs, mine templates, query the record store.

Examples::

    backline logs app.log other.log.gz --level warning --since 2024-05-01T10:00
    backline logs app.log --grep 'timeout|refused' --template T5e2ad1d5
    backline logs templates app.log --per-line lines.csv
    backline logs query app.log "SELECT level, count(*) FROM records GROUP BY 1"
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
from contextlib import contextmanager
import heapq
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from typer.core import TyperGroup

from backline.analyzers.base import AnalysisContext
from backline.analyzers.logs._engine import write_rows
from backline.analyzers.logs.mine_file import mine_file
from backline.analyzers.logs.miner import TemplateMiner, template_id
from backline.analyzers.logs.reader import open_log
from backline.analyzers.logs.records import LogRecord, read_records
from backline.analyzers.logs.timestamps import file_year
from backline.errors import BacklineError, UsageError
from backline.model import Severity

BLOCK = 8192

#: Characters a terminal would act on rather than show: C0 controls but tab and
#: newline, DEL, C1 controls, and the bidirectional overrides that reorder text.
_VISIBLE = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if c not in (0x09, 0x0A)}
_VISIBLE.update({c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]})


def visible(text: str) -> str:
    r"""``text`` with terminal control characters written out as escapes, for printing
    log content on a terminal (the records store keeps the raw text).

    >>> print(visible("x\x1b]0;pwned\x07y"))
    x\x1b]0;pwned\x07y
    """
    return text.translate(_VISIBLE)


class _DefaultGroup(TyperGroup):
    """``backline logs FILE...`` runs the hidden ``show`` command."""

    def parse_args(self, ctx, args):  # type: ignore[override]
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_DefaultGroup, no_args_is_help=True, help=(
    "Read text logs: records merged by time, templates, SQL over the records.\n\n"
    "Examples:\n\n"
    "  backline logs app.log other.log.gz --level warning --since 2024-05-01T10:00\n\n"
    "  backline logs templates app.log --per-line lines.csv\n\n"
    "  backline logs query app.log \"SELECT level, count(*) FROM records GROUP BY 1\""))


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(2)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {tz!r} (use e.g. UTC, Europe/Berlin)") from None


def _when(text: str | None, tz: ZoneInfo, what: str) -> datetime | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not an ISO date/time (e.g. 2024-05-01T10:00)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.astimezone(timezone.utc)


def _check_files(files: list[Path]) -> None:
    for f in files:
        if not f.is_file():
            raise UsageError(f"{f}: no such file")


# -- backline logs FILE... ------------------------------------------------------
@app.command("show", hidden=True)
def show(
    files: list[Path] = typer.Argument(..., help="Log files (plain or .gz/.bz2/.xz/.zst)."),
    since: Optional[str] = typer.Option(None, "--since", help="Only records at or after this time (ISO)."),
    until: Optional[str] = typer.Option(None, "--until", help="Only records before this time (ISO)."),
    level: Optional[str] = typer.Option(None, "--level", help="Minimum level: info, notice, warning, error, critical."),
    grep: Optional[str] = typer.Option(None, "--grep", help="Regular expression the record must contain."),
    template: Optional[str] = typer.Option(None, "--template", help="Only records of this template id."),
    tz: str = typer.Option("UTC", "--tz", help="Zone of timestamps without an offset."),
    limit: int = typer.Option(0, "--limit", help="Stop after this many records (0 = all)."),
) -> None:
    """Print matching records of several files, merged by time."""
    try:
        _check_files(files)
        zone = _zone(tz)
        t0, t1 = _when(since, zone, "--since"), _when(until, zone, "--until")
        min_sev = Severity.parse(level) if level else None
        rx = re.compile(grep) if grep else None
        miners: dict[Path, TemplateMiner] = {}
        if template:
            for f in (f for f in files if not _is_evtx(f)):
                m = miners[f] = TemplateMiner()
                for recs in _blocks(read_records(open_log(f), tz=zone)):
                    m.add_block([r.message for r in recs])

        def stream(f: Path, idx: int) -> Iterator[tuple[float, int, int, str, LogRecord]]:
            last = 0.0
            recs = _evtx_records(f) if _is_evtx(f) else read_records(open_log(f), tz=zone)
            for rec in recs:
                if rec.ts is not None:
                    last = rec.ts.timestamp()
                yield last, idx, rec.line, str(f), rec

        shown = 0
        for _, _, _, name, rec in heapq.merge(*(stream(f, i) for i, f in enumerate(files))):
            if t0 and (rec.ts is None or rec.ts < t0):
                continue
            if t1 and (rec.ts is None or rec.ts >= t1):
                continue
            if min_sev is not None and rec.severity < min_sev:
                continue
            if rx and not rx.search(rec.text):
                continue
            if template and (Path(name) not in miners
                             or template_id(miners[Path(name)].template(rec.message)) != template):
                continue
            ts = rec.ts.isoformat() if rec.ts else "-"
            typer.echo(visible(f"{name}:{rec.line} {ts} {rec.level or rec.severity.label} {rec.text}"))
            shown += 1
            if limit and shown >= limit:
                break
    except re.error as exc:
        _fail(UsageError(f"--grep: bad regular expression: {exc}"))
    except (BacklineError, ValueError) as exc:
        _fail(exc)
    except BrokenPipeError:  # pragma: no cover - piping into head
        sys.stderr.close()


def _is_evtx(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == b"ElfFile\x00"


def _evtx_records(path: Path) -> Iterator[LogRecord]:
    """Windows events as records (line = event record id), in file order."""
    from backline.analyzers.logs.evtx_analyzer import LEVELS, read_evtx
    from backline.model import TsQuality

    problems: list[str] = []
    names = {1: "Critical", 2: "Error", 3: "Warning", 4: "Information", 5: "Verbose"}
    for ev in read_evtx(path, str(path), problems):
        vals = "; ".join(v[:120] for v in ev.values() if v and v != "None")[:2000]
        msg = f"{ev.provider} {ev.event_id}: {vals}"
        yield LogRecord(ev.record_id, ev.record_id, ev.ts, TsQuality.EXACT if ev.ts else TsQuality.NONE,
                        names.get(ev.level, str(ev.level)), LEVELS.get(ev.level, Severity.INFO), ev.provider,
                        "", "", ev.computer, msg, msg)
    if problems:
        typer.echo(f"warning: {path}: {len(problems)} unreadable chunk(s)/record(s) skipped", err=True)


def _blocks(recs: Iterator[LogRecord]) -> Iterator[list[LogRecord]]:
    block: list[LogRecord] = []
    for r in recs:
        block.append(r)
        if len(block) >= BLOCK:
            yield block
            block = []
    if block:
        yield block


# -- backline logs templates FILE -----------------------------------------------
@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on a TTY (stderr); a no-op otherwise."""
    if not sys.stderr.isatty() or total <= 0:
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def _csv_fragment(tid: str, template: str) -> bytes:
    """``,id,template`` and the line end as :mod:`csv` writes them (quoting included)."""
    buf = io.StringIO()
    csv.writer(buf).writerow(["", tid, template])
    return buf.getvalue().encode("utf-8")


@app.command("templates")
def templates(
    file: Path = typer.Argument(..., help="A log file."),
    per_line: Optional[Path] = typer.Option(None, "--per-line",
                                            help="Write one CSV row per input line: line,template_id,template."),
    tz: str = typer.Option("UTC", "--tz", help="Zone of timestamps without an offset."),
    top: int = typer.Option(50, "--top", help="Rows of the table to print (0 = all)."),
) -> None:
    """Print the template table of FILE (id, count, first/last seen, level, template, example).

    Example: backline logs templates app.log --per-line lines.csv
    """
    try:
        run_templates(file, per_line, tz, top)
    except (BacklineError, OSError) as exc:
        _fail(exc)


#: Per-line shapes turned into CSV rows at a time (about 40 bytes a row).
CSV_LINES = 1 << 16


def run_templates(file: Path, per_line: Path | None, tz: str, top: int) -> None:
    """``backline logs templates`` (see :func:`templates`)."""
    _check_files([file])
    zone = _zone(tz)
    result = mine_file(file, zone, keep_lines=per_line is not None)
    _print_table(result.rows, top)
    if per_line is not None:
        size = max(1, result.shapes_size)
        with open(per_line, "wb") as fh, _progress("writing per-line templates", size) as tick:
            fh.write(b"line,template_id,template\r\n")
            frags = [_csv_fragment(template_id(t), t) for t in result.shape_templates]
            line = 1
            result.shapes.seek(0)
            while True:
                chunk = result.shapes.read(4 * CSV_LINES)
                if not chunk:
                    break
                fh.write(write_rows(chunk, frags, line))
                line += len(chunk) // 4
                tick(result.shapes.tell())
        result.shapes.close()
        typer.echo(f"wrote {per_line}", err=True)
    for w in result.warnings:
        typer.echo(f"warning: {file}: {w}", err=True)


class _Refused(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):           # malformed options get the Typer command's messages
        raise _Refused(message)


def fast_templates(argv: list[str]) -> int | None:
    """``backline logs templates ARGS`` without Typer's parsing (building its type adapters
    costs about 0.2 s of CPU at every start: a fifth of the whole command on a million
    lines); None when Typer should handle the arguments (help, a malformed option).

    >>> fast_templates(["--help"]) is None, fast_templates(["f.log", "--no-such-option"]) is None
    (True, True)
    """
    if any(a in ("-h", "--help") for a in argv):
        return None
    p = _Parser(add_help=False, allow_abbrev=False)
    p.add_argument("file", type=Path)
    p.add_argument("--per-line", dest="per_line", type=Path)
    p.add_argument("--tz", default="UTC")
    p.add_argument("--top", type=int, default=50)
    try:
        a = p.parse_args(list(argv))
    except _Refused:
        return None
    try:
        run_templates(a.file, a.per_line, a.tz, a.top)
    except (BacklineError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    return 0


def _print_table(rows: dict[str, list], top: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{len(rows)} templates", show_lines=False)
    for col in ("id", "count", "first seen", "last seen", "level", "template", "example"):
        table.add_column(col, overflow="fold")
    ordered = sorted(rows.items(), key=lambda kv: -kv[1][0])
    for t, (count, first, last, lvl, ex) in ordered[: top or None]:
        table.add_row(template_id(t), str(count), first.isoformat() if first else "-",
                      last.isoformat() if last else "-", visible(lvl or "-"), Text(visible(t)), Text(visible(ex)))
    Console(width=max(160, Console().width)).print(table)


# -- backline logs query PATH SQL -----------------------------------------------
def _parquet_for(path: Path, zone: ZoneInfo) -> Path:
    """Parquet records of a text log, made once and kept in the data folder."""
    from backline.analyzers.logs.store import default_store_dir
    from backline.analyzers.logs.text_analyzer import analyze_text_log

    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{zone.key}|v2".encode()).hexdigest()[:16]
    out = default_store_dir() / f"{key}.parquet"
    if out.is_file():
        return out
    with tempfile.TemporaryDirectory(dir=default_store_dir()) as tmp:
        with _progress(f"indexing {path.name}", 1000) as tick:
            ctx = AnalysisContext(tz=zone, work_dir=Path(tmp), max_events=0,
                                  progress=lambda frac: tick(int(frac * 1000)))
            for _ in analyze_text_log(path, str(path), ctx):
                pass
        (Path(tmp) / "records.parquet").replace(out)
    return out


@app.command("query")
def query_cmd(
    path: Path = typer.Argument(..., help="Parquet record file or folder of them, or a text log file."),
    sql: str = typer.Argument(..., help="SQL over the table 'records'."),
    tz: str = typer.Option("UTC", "--tz", help="Zone of timestamps without an offset (text logs)."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV instead of a table."),
    limit: int = typer.Option(1000, "--limit", help="Rows to print at most."),
) -> None:
    """Run SQL over the records table (columns: ts, artifact, line, level, component, template_id, message, ...).

    Example: backline logs query app.log "SELECT template, count(*) n FROM records GROUP BY 1 ORDER BY n DESC"
    """
    try:
        zone = _zone(tz)
        if path.is_file() and path.suffix != ".parquet":
            source = _parquet_for(path, zone)
        else:
            source = path
        from backline.analyzers.logs.store import query

        names, rows = query([source], sql, limit=limit)
    except BacklineError as exc:
        _fail(exc)
        return
    if as_csv:
        w = csv.writer(sys.stdout)
        w.writerow(names)
        if sys.stdout.isatty():          # a terminal, not a file: no raw control characters
            w.writerows([visible(v) if isinstance(v, str) else v for v in r] for r in rows)
        else:
            w.writerows(rows)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from rich.markup import escape

    table = Table(*(escape(visible(n)) for n in names))
    for r in rows:
        table.add_row(*(Text("" if v is None else visible(str(v))) for v in r))
    Console().print(table)


def register(root: typer.Typer) -> None:
    """Add ``backline logs`` to the root app."""
    root.add_typer(app, name="logs")
