"""The Markdown report: headings and tables to paste into a ticket.

Text from the evidence is escaped so it cannot break a table (``|``, line
breaks), start markup (``*``, ``_``, backticks, brackets) or inject HTML
(``<``, ``>``, ``&`` become entities, which every Markdown flavour shows
as text).  Evidence excerpts go in fenced code blocks whose fence is longer
than any run of backticks inside.

>>> from backline.model import AnalysisResult
>>> from backline.report.model import build_report
>>> md = render_markdown(build_report(AnalysisResult((), (), (), (), (), ())))
>>> md.splitlines()[0]
'# Backline report'
"""

from __future__ import annotations

import json
import re

from backline.report.diagnosis import NO_CONFIDENT, PROBABLE, confident, diagnosis_view
from backline.report.json_report import iso, jsonable
from backline.report.model import Report
from backline.report.text import clean

MAX_FINDINGS = 200
MAX_EVIDENCE = 3
MAX_EXCERPT = 1000
MAX_FACTS = 300

_MD_SPECIAL = re.compile(r"([\\`*\[\]|~]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z]))")
_LINE_START = re.compile(r"^(\s*)([#+=-]|\d+[.)])")


def esc(text: object, limit: int = 300) -> str:
    r"""Escape inline Markdown text (one line, table-safe).  Underscores inside
    words (``crash_linux``) are left alone: no flavour emphasises them.

    >>> esc("a|b <i>*x*</i> snake_case _em_")
    'a\\|b &lt;i&gt;\\*x\\*&lt;/i&gt; snake_case \\_em\\_'
    """
    s = clean(str(text), limit)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", s)


def paragraph(text: str, limit: int = 500) -> str:
    r"""Escaped text that starts a line: it cannot become a heading, list or rule.

    >>> paragraph("# not a heading")
    '\\# not a heading'
    """
    s = esc(text, limit)
    return _LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), s)


def code(text: str) -> str:
    """Inline code span, safe for any content (one line)."""
    s = clean(text, 200).replace("|", "\u2502")   # a pipe ends a table cell even inside code
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s.strip() else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def fenced(text: str, limit: int = MAX_EXCERPT) -> str:
    """A fenced code block holding ``text`` verbatim (control chars made visible)."""
    lines = [clean(line, limit) for line in text[: limit * 4].splitlines()[:40]] or [""]
    body = "\n".join(lines)
    longest = max((len(m) for m in re.findall(r"`{3,}", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _when(ts) -> str:
    return iso(ts) or ""


def diagnosis_markdown(report: Report, max_rows: int = 20) -> list[str]:
    """The "Probable root cause" section (no lines when there is no diagnosis or no cause)."""
    d = report.diagnosis
    if d is None or not d.causes:
        return []
    views = diagnosis_view(report.findings, d.causes)
    if not confident(d.causes):
        out = [f"## {NO_CONFIDENT}", "",
               f"No cause reaches a confidence of {PROBABLE:.2f}; the candidates, for a look:", ""]
        out += _table(["Confidence", "Candidate", "Code", "Finding"],
                      [[f"{v.cause.confidence:.2f}", esc(v.cause.title, 200), code(v.cause.code),
                        str(v.cause.finding + 1)] for v in views])
        out.append("")
        return out
    top = views[0]
    c = top.cause
    out = [f"## {top.heading}", "", f"**{esc(c.title, 300)}**", ""]
    where = f"confidence {c.confidence:.2f} \u00b7 {code(c.code)} \u00b7 finding {c.finding + 1}"
    if c.evidence:
        where += f" \u00b7 {code(c.evidence[0].artifact)} {code(c.evidence[0].locator)}"
    out += [where, ""]
    if top.rows:
        out += ["What it explains:", ""]
        for row in top.rows[:max_rows]:
            line = "  " * (row.depth - 1) + f"- \u2192 {esc(row.summary, 160)}"
            if row.where is not None:
                line += f" \u2014 {code(row.where.artifact)} {code(row.where.locator)}"
            if row.joined:
                line += f" ({esc(row.joined, 100)})"
            out.append(line)
        if len(top.rows) > max_rows:
            out.append(f"- _and {len(top.rows) - max_rows} more links in the JSON report_")
        out.append("")
    if c.next_steps:
        out += ["Next steps:", ""]
        out += [f"- **{step.kind}**: {esc(step.text, 500)}" for step in c.next_steps]
        out.append("")
    if len(views) > 1:
        out += ["Other possible causes:", ""]
        out += _table(["Confidence", "Cause", "Code", "Finding"],
                      [[f"{v.cause.confidence:.2f}", esc(v.cause.title, 200), code(v.cause.code),
                        str(v.cause.finding + 1)] for v in views[1:]])
        out.append("")
    return out


def render_markdown(report: Report) -> str:
    """The report as GitHub-flavoured Markdown, the probable root cause first."""
    s = report.summary
    out: list[str] = ["# Backline report", "", f"**{esc(s.headline())}**", ""]
    out += diagnosis_markdown(report)
    rows = [
        ["Inputs", "<br>".join(code(i) for i in report.inputs[:20]) or "\u2014"],
        ["Evidence time span", f"{_when(s.time_start)} \u2192 {_when(s.time_end)}"
         if s.time_start else "unknown"],
        ["Artifacts", f"{s.artifacts} ("
         + ", ".join(f"{code(k)}: {n}" for k, n in s.artifacts_by_kind.items()) + ")"
         if s.artifacts else "0"],
        ["Unreadable / with problems", str(s.unreadable_artifacts)],
        ["Analyzer runs", ", ".join(f"{k}: {n}" for k, n in s.runs_by_status.items())],
        ["Events", f"{s.events:,} ({s.undated_events:,} without timestamp)"],
        ["Refused entries", str(s.refusals)],
        ["Generated", f"{_when(report.generated_at)} by Backline {esc(report.backline_version)}"],
    ]
    out += _table(["", ""], rows) + [""]

    from backline.report.known_issues import render_known_issues_markdown

    out += render_known_issues_markdown(report.known_issues)
    out += ["## Findings", ""]
    if not report.findings:
        out += ["No findings.", ""]
    else:
        table = []
        for f in report.findings[:MAX_FINDINGS]:
            ev = f.evidence[0] if f.evidence else None
            table.append([f"**{f.severity.label.upper()}**", code(f.code), esc(f.title, 200),
                          str(f.count), code(f.artifact) if f.artifact else "case-wide",
                          code(ev.locator) if ev else "\u2014"])
        out += _table(["Severity", "Code", "Finding", "Count", "Artifact", "Evidence"], table) + [""]
        if len(report.findings) > MAX_FINDINGS:
            out += [f"_{len(report.findings) - MAX_FINDINGS} more findings are in the JSON report._", ""]

        out += ["### Evidence", ""]
        for f in report.findings[:MAX_FINDINGS]:
            out.append(f"#### {f.severity.label.upper()} {code(f.code)} \u2014 {esc(f.title, 200)}")
            out.append("")
            meta = [f"artifact: {code(f.artifact) if f.artifact else 'case-wide'}", f"count: {f.count}"]
            if f.first_seen:
                meta.append(f"first seen: {_when(f.first_seen)}")
            if f.last_seen:
                meta.append(f"last seen: {_when(f.last_seen)}")
            if f.analyzer:
                meta.append(f"analyzer: {esc(f.analyzer)}")
            out += ["- " + m for m in meta] + [""]
            if f.detail:
                out += ["  \n".join(paragraph(line) for line in f.detail[:8000].splitlines()[:40]), ""]
            for ref in f.evidence[:MAX_EVIDENCE]:
                out.append(f"{code(ref.artifact)} {code(ref.locator)}")
                out.append("")
                if ref.excerpt:
                    out += [fenced(ref.excerpt), ""]
            if len(f.evidence) > MAX_EVIDENCE:
                out += [f"_and {len(f.evidence) - MAX_EVIDENCE} more evidence references_", ""]

    out += ["## Artifacts", ""]
    if report.artifacts:
        rows = []
        for a in report.artifacts:
            art = a.artifact
            problems = "; ".join(esc(p, 120) for p in art.problems) if art else ""
            rows.append([code(a.path) if a.path else "case-wide", code(art.kind.value) if art else "\u2014",
                         esc(art.format) if art else "", f"{art.size:,}" if art else "",
                         a.status, str(len(a.findings)), f"{a.events:,}", problems])
        out += _table(["Path", "Kind", "Format", "Size", "Status", "Findings", "Events", "Problems"],
                      rows) + [""]
    else:
        out += ["No artifacts.", ""]

    if report.failed_runs:
        out += ["## Failed analyzer runs", ""]
        out += _table(["Analyzer", "Artifact", "Reason"],
                      [[code(r.analyzer), code(r.artifact), esc(r.reason or "(none)", 300)]
                       for r in report.failed_runs]) + [""]

    if report.refusals:
        out += ["## Refused on intake", ""]
        out += _table(["Entry", "Reason"],
                      [[code(r.path), esc(r.reason, 300)] for r in report.refusals]) + [""]

    if report.facts:
        out += ["## Facts", ""]
        out += _table(["Artifact", "Fact", "Value"],
                      [[code(f.artifact) if f.artifact else "case-wide", code(f.name), esc(_value(f.value), 200)]
                       for f in report.facts[:MAX_FACTS]]) + [""]
        if len(report.facts) > MAX_FACTS:
            out += [f"_{len(report.facts) - MAX_FACTS} more facts are in the JSON report._", ""]
    return "\n".join(out).rstrip() + "\n"


def _value(value: object) -> str:
    v = jsonable(value)
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
