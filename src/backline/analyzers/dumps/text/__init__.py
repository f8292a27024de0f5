"""Text crash artifacts: Python, Java, .NET traces, faulthandler, jstack, hs_err.

:func:`parse_text_crash_text` finds every trace in a text (a file of its own
or a log that contains traces) and returns one :class:`CrashReport` per trace,
in the order they appear; ``report.extra["line"]`` is the 1-based line where
each starts (``end_line`` where it ends).  Bad input never raises: binary junk
gives no reports; over-long texts are cut at :data:`MAX_TEXT` characters with
a warning in the reports.

>>> reps = parse_text_crash_text('Traceback (most recent call last):\\n'
...                              '  File "a.py", line 1, in <module>\\nKeyError: 1\\n')
>>> [(r.source_format, r.exception.type, r.extra["line"]) for r in reps]
[('python', 'KeyError', 1)]
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from backline.analyzers.dumps.model import CrashReport
from backline.analyzers.dumps.text.common import MAX_LINE, MAX_REPORTS
from backline.analyzers.dumps.text.dotnet import parse_dotnet
from backline.analyzers.dumps.text.hserr import START as HS_ERR_START, SIGNAL as HS_ERR_SIGNAL, parse_hs_err
from backline.analyzers.dumps.text.java import parse_java_traces, parse_jstack
from backline.analyzers.dumps.text.python import parse_faulthandler, parse_python
from backline.errors import FormatError

__all__ = ["parse_text_crash", "parse_text_crash_text", "MAX_TEXT"]

MAX_TEXT = 64 * 1024 * 1024


def parse_text_crash_text(text: str, source: str = "") -> list[CrashReport]:
    """Every crash trace in ``text`` as a :class:`CrashReport` (``source`` names the origin)."""
    warnings: tuple[str, ...] = ()
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT]
        warnings = (f"text cut at {MAX_TEXT} characters",)
    if "\0" in text[:4096]:
        return []
    lines = [ln[:MAX_LINE].rstrip("\r") for ln in text.split("\n")]
    if any(HS_ERR_START.match(ln) or HS_ERR_SIGNAL.match(ln) for ln in lines[:60]):
        found = parse_hs_err(lines)
    else:
        found = []
        for parser in (parse_jstack, parse_python, parse_faulthandler, parse_java_traces, parse_dotnet):
            found.extend(parser(lines))
    found.sort(key=lambda x: (x[0], -(x[1].extra.get("end_line") or x[0])))
    out: list[CrashReport] = []
    covered_until = 0
    for start, rep in found:
        if start <= covered_until:
            continue        # inside a trace already taken (e.g. the Java frames of a jstack)
        covered_until = max(start, int(rep.extra.get("end_line") or start))
        extra = {**rep.extra, "source": source} if source else rep.extra
        out.append(replace(rep, extra=extra, warnings=rep.warnings + warnings))
        if len(out) >= MAX_REPORTS:
            break
    return out


def parse_text_crash(path: Path) -> list[CrashReport]:
    """Read ``path`` (UTF-8, undecodable bytes replaced) and parse every trace in it."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_TEXT + 1)
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror}", artifact=str(path)) from exc
    text = raw[:MAX_TEXT].decode("utf-8", "replace")
    reps = parse_text_crash_text(text, str(path))
    if len(raw) > MAX_TEXT:
        reps = [replace(r, warnings=r.warnings + (f"file larger than {MAX_TEXT} bytes: only the "
                                                  "start was read",)) for r in reps]
    return reps
