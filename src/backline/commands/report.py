"""``backline report``: work with saved JSON reports.

Examples::

    backline report show out/report.json
    backline report render out/report.json --format html --format md --out shared/
    backline report validate out/report.json
    backline report schema > report.schema.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import typer
from rich.console import Console
from rich.text import Text

from backline.errors import BacklineError

app = typer.Typer(
    name="report",
    help="Show, re-render and validate saved JSON reports (report.json).\n\n"
    "Examples:\n\n"
    "  backline report show out/report.json\n\n"
    "  backline report render out/report.json -f html -f md --out shared/\n\n"
    "  backline report validate out/report.json",
    no_args_is_help=True,
)


def _fail(message: str, code: int = 2) -> None:
    err = Console(stderr=True, highlight=False)
    line = Text("error: ", style="bold red")
    line.append(message)
    err.print(line, soft_wrap=True)
    raise typer.Exit(code)


def _load(path: Path):
    from backline.report.load import load_result, read_document

    try:
        return load_result(read_document(path), source=str(path))
    except BacklineError as exc:
        _fail(str(exc))


@app.command("show")
def show_cmd(
    report_json: Path = typer.Argument(..., help="A report.json written by backline analyze."),
    max_findings: int = typer.Option(20, "--max-findings", "-n", min=0, help="Rows in the findings table."),
) -> None:
    """Print the terminal summary of a saved report.

    Example: backline report show out/report.json -n 50
    """
    from backline.report import build_report, render_text

    result = _load(report_json)
    render_text(build_report(result), Console(highlight=False), max_findings=max_findings)


@app.command("render")
def render_cmd(
    report_json: Path = typer.Argument(..., help="A report.json written by backline analyze."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the reports into."),
    fmt: List[str] = typer.Option(["html", "md"], "--format", "-f",
                                  help="html, md, json or txt; repeatable."),
) -> None:
    """Render a saved report again: HTML, Markdown, JSON or plain text.

    Example: backline report render out/report.json -f html --out /tmp/case-4711
    """
    from backline.report import build_report, write_reports
    from backline.report.write import normalise_formats

    try:
        formats = normalise_formats(part for f in fmt for part in f.split(",") if part.strip())
    except BacklineError as exc:
        _fail(str(exc))
    result = _load(report_json)
    try:
        written = write_reports(build_report(result), out, formats)
    except BacklineError as exc:
        _fail(str(exc))
    console = Console(highlight=False)
    for kind, path in written.items():
        console.print(Text(f"{kind:<5} {path}"), soft_wrap=True)


@app.command("validate")
def validate_cmd(
    report_json: Path = typer.Argument(..., help="The JSON report to check."),
) -> None:
    """Check a JSON report against the report schema (exit 1 when invalid).

    Example: backline report validate out/report.json
    """
    from backline.report.load import read_document, validate_document

    try:
        doc = read_document(report_json)
    except BacklineError as exc:
        _fail(str(exc))
    problems = validate_document(doc)
    console = Console(highlight=False)
    if problems:
        for p in problems:
            console.print(Text(f"{report_json}: {p}"), soft_wrap=True)
        raise typer.Exit(1)
    console.print(Text(f"{report_json}: valid report, schema_version {doc.get('schema_version')}"), soft_wrap=True)


@app.command("schema")
def schema_cmd(
    path_only: bool = typer.Option(False, "--path", help="Print where the schema file is instead."),
) -> None:
    """Print the JSON Schema (draft 2020-12) of report.json.

    Example: backline report schema > report.schema.json
    """
    from importlib import resources

    from backline.report.json_report import SCHEMA_FILE

    ref = resources.files("backline.report").joinpath(SCHEMA_FILE)
    if path_only:
        sys.stdout.write(f"{ref}\n")
    else:
        sys.stdout.write(ref.read_text(encoding="utf-8"))


def register(root: typer.Typer) -> None:
    """Add ``backline report`` to the root command."""
    root.add_typer(app, name="report")


__all__ = ["app", "register"]
