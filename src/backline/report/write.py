"""Write reports to a folder: ``report.json``, ``report.md``, ``report.html``
(and ``report.txt``, the terminal summary without colour).

Files are written to a temporary name and renamed, so a reader never sees
half a report.  Characters that cannot be encoded (lone surrogates from
badly decoded customer files) are written as ``\\udcxx`` escapes.

>>> import tempfile
>>> from pathlib import Path
>>> from backline.model import AnalysisResult
>>> from backline.report.model import build_report
>>> out = Path(tempfile.mkdtemp())
>>> paths = write_reports(build_report(AnalysisResult((), (), (), (), (), ())), out, ["json", "md"])
>>> sorted(p.name for p in paths.values())
['report.json', 'report.md']
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from rich.console import Console

from backline.errors import StorageError, UsageError
from backline.report.html import render_html
from backline.report.json_report import iter_json
from backline.report.markdown import render_markdown
from backline.report.model import Report
from backline.report.text import render_text


def _render_txt(report: Report) -> str:
    buf = io.StringIO()
    render_text(report, Console(file=buf, width=100, color_system=None, force_terminal=False,
                                soft_wrap=False, emoji=False, highlight=False),
                max_findings=len(report.findings))
    return buf.getvalue()


def _whole(render: Callable[[Report], str]) -> Callable[[Report], Iterable[str]]:
    return lambda report: (render(report),)


#: format name -> (file name, renderer yielding the text in pieces)
FORMATS: dict[str, tuple[str, Callable[[Report], Iterable[str]]]] = {
    "json": ("report.json", iter_json),          # streamed: events a few hundred at a time
    "md": ("report.md", _whole(render_markdown)),
    "html": ("report.html", _whole(render_html)),
    "txt": ("report.txt", _whole(_render_txt)),
}
_ALIASES = {"markdown": "md", "htm": "html", "text": "txt"}


def normalise_formats(formats: Iterable[str]) -> list[str]:
    """Canonical format names, in the given order, without repeats.

    >>> normalise_formats(["HTML", "markdown", "json", "md"])
    ['html', 'md', 'json']
    """
    out: list[str] = []
    for raw in formats:
        name = _ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if name not in FORMATS:
            raise UsageError(f"unknown report format {raw!r}; use one of {', '.join(FORMATS)}")
        if name not in out:
            out.append(name)
    return out


def _write_atomic(path: Path, pieces: Iterable[str]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
            for piece in pieces:
                fh.write(piece.encode("utf-8", errors="backslashreplace"))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_reports(report: Report, out_dir: Path, formats: Iterable[str]) -> dict[str, Path]:
    """Render ``report`` in each format into ``out_dir`` (created if missing).

    Returns format -> written path (``"json"`` -> ``out_dir/report.json``).
    Unknown formats raise :class:`UsageError` before anything is written;
    an unwritable folder raises :class:`StorageError` naming it.
    """
    names = normalise_formats(formats)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create report folder: {exc.strerror or exc}",
                           artifact=str(out_dir)) from exc
    written: dict[str, Path] = {}
    for name in names:
        filename, renderer = FORMATS[name]
        path = out_dir / filename
        try:
            _write_atomic(path, renderer(report))
        except OSError as exc:
            raise StorageError(f"cannot write report: {exc.strerror or exc}",
                               artifact=str(path)) from exc
        written[name] = path
    return written
