"""Reports rendered from one report model.

::

    report = build_report(result)              # backline.model.AnalysisResult -> Report
    render_text(report, console)               # terminal summary (Rich)
    render_json(report)                        # versioned JSON (report.schema.json)
    iter_json(report)                          # the same, in pieces (a few hundred events each)
    render_markdown(report)                    # for pasting into a ticket
    render_html(report)                        # one self-contained HTML file
    write_reports(report, out_dir, ["json", "md", "html"])
"""

from __future__ import annotations

from backline.report.html import render_html
from backline.report.json_report import iter_json, load_schema, render_json, to_document
from backline.report.markdown import render_markdown
from backline.report.model import ArtifactSection, Report, Summary, build_report
from backline.report.text import render_text
from backline.report.timeline import Timeline, build_timeline
from backline.report.write import FORMATS, write_reports

__all__ = [
    "FORMATS",
    "ArtifactSection",
    "Report",
    "Summary",
    "Timeline",
    "build_report",
    "build_timeline",
    "iter_json",
    "load_schema",
    "render_html",
    "render_json",
    "render_markdown",
    "render_text",
    "to_document",
    "write_reports",
]
