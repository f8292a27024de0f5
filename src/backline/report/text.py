"""The terminal summary (Rich).

A headline, the worst findings in a table, failed analyzer runs, refusals,
and where the reports were written.  Sized for a 100-column terminal; every
string from the evidence goes in as :class:`rich.text.Text`, never as Rich
markup, and control characters are made visible, so a customer's log line
cannot restyle or scramble the terminal.  On a non-TTY console Rich drops
colour by itself; severity is always spelled out, never shown by colour only.

>>> import io
>>> from rich.console import Console
>>> from backline.model import AnalysisResult
>>> from backline.report.model import build_report
>>> out = io.StringIO()
>>> render_text(build_report(AnalysisResult((), (), (), (), (), ())), Console(file=out, width=100))
>>> out.getvalue().splitlines()[0]
'No findings in 0 artifacts'
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from backline.model import Severity
from backline.report.diagnosis import MAX_ALTERNATIVES, NO_CONFIDENT, PROBABLE, confident, diagnosis_view
from backline.report.model import Report

#: Rich styles per severity.
SEVERITY_STYLE: dict[Severity, str] = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}

_CONTROL = {c: f"\\x{c:02x}" for c in range(32) if c not in (9,)}
_CONTROL[9] = " "
_CONTROL[0x7F] = "\\x7f"
_CONTROL.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})


_KEEP_LINES = {c: v for c, v in _CONTROL.items() if c not in (9, 10, 13)}


def visible(text: str) -> str:
    r"""Control characters other than tab, CR and LF shown as ``\xNN``.

    >>> visible("a\x1b[0m\tb\nc") == "a\\x1b[0m\tb\nc"
    True
    """
    return text.translate(_KEEP_LINES)


def clean(text: str, limit: int = 300) -> str:
    """One line, control characters shown as ``\\xNN``, at most ``limit`` characters.

    >>> clean("a\\x1b[31mred\\nnext")
    'a\\\\x1b[31mred\\\\x0anext'
    """
    if len(text) > limit * 4:
        text = text[: limit * 4]
    text = text.translate(_CONTROL)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _sev(sev: Severity) -> Text:
    return Text(sev.label.upper(), style=SEVERITY_STYLE[sev])


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes} min {sec} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def headline(report: Report) -> Text:
    """The first line: counts by severity in their colours, then context."""
    s = report.summary
    line = Text()
    parts = [(sev, s.findings_by_severity.get(sev.label, 0)) for sev in sorted(Severity, reverse=True)]
    parts = [(sev, n) for sev, n in parts if n]
    noun = "artifact" if s.artifacts == 1 else "artifacts"
    if not parts:
        complete = s.analyzed_artifacts >= s.artifacts
        line.append(s.headline(), style="bold green" if complete else "bold yellow")
    else:
        for i, (sev, n) in enumerate(parts):
            if i:
                line.append(", ")
            line.append(f"{n} {sev.label}", style=SEVERITY_STYLE[sev] if sev >= Severity.LOW else "")
        line.append(" finding" if s.findings == 1 else " findings", style="bold")
        line.append(f" in {s.artifacts} {noun}")
    return line


def _context(report: Report) -> Text:
    s = report.summary
    bits = [f"{s.events:,} events", f"{sum(s.runs_by_status.values())} analyzer runs"]
    if s.runs_by_status.get("failed"):
        bits.append(f"{s.runs_by_status['failed']} failed")
    if s.unreadable_artifacts:
        bits.append(f"{s.unreadable_artifacts} unreadable/problem artifacts")
    if s.refusals:
        bits.append(f"{s.refusals} refused")
    if s.time_start and s.time_end:
        bits.append(f"evidence {s.time_start:%Y-%m-%d %H:%M:%S} \u2192 {s.time_end:%Y-%m-%d %H:%M:%S} UTC")
    if s.duration_s is not None:
        bits.append(f"analysed in {_duration(s.duration_s)}")
    return Text(" \u00b7 ".join(bits), style="dim")


def _artifact_name(path: str) -> str:
    return path.rsplit("/", 1)[-1].rsplit("!", 1)[-1] if path else "(case)"


def _findings_table(report: Report, max_findings: int) -> Table:
    table = Table(box=box.SIMPLE_HEAD, expand=True, show_edge=False, pad_edge=False,
                  header_style="bold")
    shown = report.findings[:max_findings]
    code_w = min(26, max((len(f.code) for f in shown), default=4))
    name_w = min(24, max((len(_artifact_name(f.artifact)) for f in shown), default=8))
    counts = any(f.count != 1 for f in shown)
    table.add_column("Severity", no_wrap=True, width=8)
    table.add_column("Code", overflow="fold", min_width=min(code_w, 12), max_width=code_w)
    table.add_column("Finding", overflow="fold", ratio=3, min_width=16)
    if counts:
        table.add_column("#", justify="right", no_wrap=True, min_width=3)
    table.add_column("Evidence", overflow="fold", ratio=2, min_width=min(name_w, 16))
    for f in shown:
        where = f.evidence[0] if f.evidence else None
        ev = Text(clean(_artifact_name(f.artifact), 60), style="bold")
        if where is not None:
            ev.append(" " + clean(where.locator, 40))
        row = [_sev(f.severity), Text(clean(f.code, 60)), Text(clean(f.title, 160))]
        if counts:
            row.append(f"{f.count:,}")
        table.add_row(*row, ev)
    return table


def _artifact_ref(ref) -> Text:
    t = Text(clean(_artifact_name(ref.artifact), 60), style="bold")
    t.append(" " + clean(ref.locator, 40))
    return t


def render_diagnosis(report: Report, console: Console, *, max_rows: int = 8) -> None:
    """The "Probable root cause" section: the top cause, its chain, what to check next, and the
    runners-up in one line each.  Prints nothing when the report has no diagnosis or no cause."""
    d = report.diagnosis
    if d is None or not d.causes:
        return
    views = diagnosis_view(report.findings, d.causes)
    if not confident(d.causes):
        # nothing reaches PROBABLE: say so, and list the candidates without putting one first
        console.print(Text(NO_CONFIDENT, style="bold"))
        console.print(Text(f"  candidates, none above {PROBABLE:.2f}:", style="dim"))
        for v in views[:1 + MAX_ALTERNATIVES]:
            alt = Text(f"  ({v.cause.confidence:.2f}) ", style="dim")
            alt.append(clean(v.cause.title, 160))
            alt.append(f"  {clean(v.cause.code, 60)}", style="dim")
            console.print(alt)
        console.print()
        return
    top = views[0]
    c = top.cause
    head = Text(f"{top.heading} ", style="bold")
    head.append(f"(confidence {c.confidence:.2f})", style="dim")
    console.print(head)
    console.print(Text("  " + clean(c.title, 240), style="bold red" if c.confidence >= PROBABLE else "bold yellow"))
    where = Text("  " + clean(c.code, 60) + " \u00b7 ")
    if c.evidence:
        where.append_text(_artifact_ref(c.evidence[0]))
    console.print(where)
    for row in top.rows[:max_rows]:
        line = Text("  " + "  " * row.depth + "\u2192 ")
        line.append(clean(row.summary, 140))
        if row.where is not None:
            line.append(" \u2014 ")
            line.append_text(_artifact_ref(row.where))
        if row.joined:
            line.append(f" ({clean(row.joined, 80)})", style="dim")
        console.print(line)
    if len(top.rows) > max_rows:
        console.print(Text(f"    \u2026 and {len(top.rows) - max_rows} more links (see the full report)",
                           style="dim"))
    for step in c.next_steps[:3]:
        console.print(Text(f"  {step.kind}: " + clean(step.text, 300), style="dim"))
    for v in views[1:1 + MAX_ALTERNATIVES]:
        alt = Text(f"  also possible ({v.cause.confidence:.2f}): ", style="dim")
        alt.append(clean(v.cause.title, 160))
        console.print(alt)
    console.print()


def render_text(report: Report, console: Console, *, max_findings: int = 20,
                written: Mapping[str, Path] | None = None) -> None:
    """Print the terminal summary of ``report`` on ``console``.

    ``written`` (format -> path, what :func:`write_reports` returns) adds a
    "Reports written" block.  The probable root cause comes first (:func:`render_diagnosis`).
    """
    render_diagnosis(report, console)
    console.print(headline(report))
    console.print(_context(report))
    if report.inputs:
        console.print(Text("inputs: " + ", ".join(clean(i, 120) for i in report.inputs[:5])
                           + (f" (+{len(report.inputs) - 5} more)" if len(report.inputs) > 5 else ""),
                           style="dim"))

    from backline.report.known_issues import render_known_issues_text

    render_known_issues_text(report.known_issues, console)

    if report.findings:
        console.print()
        console.print(_findings_table(report, max(0, max_findings)))
        hidden = len(report.findings) - max(0, max_findings)
        if hidden > 0:
            console.print(Text(f"\u2026 and {hidden} more findings (see the full report)", style="dim"))

    if report.failed_runs:
        console.print()
        console.print(Text(f"Failed analyzer runs ({len(report.failed_runs)})", style="bold red"))
        t = Table(box=box.SIMPLE, show_header=False, expand=True, show_edge=False, pad_edge=False)
        t.add_column("Analyzer", no_wrap=True, ratio=2)
        t.add_column("Artifact", overflow="fold", ratio=3)
        t.add_column("Reason", overflow="fold", ratio=5)
        for r in report.failed_runs[:max(10, max_findings)]:
            t.add_row(Text(clean(r.analyzer, 40)), Text(clean(r.artifact, 120)),
                      Text(clean(r.reason or "(no reason recorded)", 200)))
        console.print(t)
        if len(report.failed_runs) > max(10, max_findings):
            console.print(Text(f"\u2026 and {len(report.failed_runs) - max(10, max_findings)} more",
                               style="dim"))

    if report.refusals:
        console.print()
        console.print(Text(f"Refused on intake ({len(report.refusals)})", style="bold yellow"))
        for r in report.refusals[:10]:
            line = Text("  ")
            line.append(clean(r.path, 100), style="bold")
            line.append(": " + clean(r.reason, 160))
            console.print(line)
        if len(report.refusals) > 10:
            console.print(Text(f"  \u2026 and {len(report.refusals) - 10} more", style="dim"))

    if written:
        console.print()
        lines = [Text("Reports written", style="bold")]
        for fmt, path in written.items():
            line = Text(f"  {fmt:<5} ")
            line.append(str(path), style="underline")
            lines.append(line)
        console.print(Group(*lines))
