from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from backline.report import build_report, render_text

from .samples import fixed_clock


def _render(result, width=100, **kw) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=False, color_system=None)
    render_text(build_report(result, now=fixed_clock), console, **kw)
    return buf.getvalue()


def test_headline_table_and_blocks(rich):
    out = _render(rich, written={"json": Path("/out/report.json"), "html": Path("/out/report.html")})
    lines = out.splitlines()
    assert lines[0] == "1 critical, 1 high, 1 medium, 1 low, 1 info findings in 4 artifacts"
    assert "NET.TCP.RST_TO_SYN" in out and "packet:5531" in out
    assert out.index("CRITICAL") < out.index("HIGH") < out.index("MEDIUM")
    assert "Failed analyzer runs (1)" in out and "stream 7 beyond file" in out
    assert "Refused on intake (2)" in out and "path escapes the work folder" in out
    assert "Reports written" in out and "/out/report.html" in out


def test_fits_100_columns_without_colour(rich):
    out = _render(rich)
    assert "\x1b[" not in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_colour_on_a_terminal(rich):
    buf = io.StringIO()
    render_text(build_report(rich), Console(file=buf, width=100, force_terminal=True, color_system="standard"))
    assert "\x1b[" in buf.getvalue()


def test_hostile_text_is_neither_markup_nor_escape_codes(hostile):
    out = _render(hostile, width=200)
    assert "[bold red]markup[/]" in out          # shown literally, not interpreted
    assert "\x1b" not in out                     # the ESC from the evidence is made visible
    assert "\\x1bmarkup" not in out and "\\x1b[31mansi" in out


def test_max_findings_limits_the_table(rich):
    out = _render(rich, max_findings=2)
    assert "LOG.DEPRECATION" not in out and "and 3 more findings" in out


def test_empty(empty):
    out = _render(empty)
    assert out.splitlines()[0] == "No findings in 0 artifacts"
    assert "Failed" not in out


def test_narrow_terminal_does_not_crash(rich):
    out = _render(rich, width=40)
    assert max(len(re.sub(r"\s+$", "", line)) for line in out.splitlines()) <= 40


def test_headline_when_nothing_was_analysed():
    from backline.model import AnalysisResult, RunStatus

    from .samples import art, run
    result = AnalysisResult((), (art("a.log"),), (run("-", "a.log", RunStatus.SKIPPED),), (), (), ())
    assert _render(result).splitlines()[0] == "No findings in 1 artifact (0 analysed)"
