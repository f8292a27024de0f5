"""``backline case``: the case workflow on the local database.

Every command acts as a user (``--as NAME`` or ``BACKLINE_USER``) and is
checked like the API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from backline.cases.model import CaseSeverity, CaseStatus
from backline.cases.service import NewCase
from backline.cases.sla import summarise
from backline.commands._cases_common import AS_OPT, DB_OPT, JSON_OPT, acting_user, fail, open_hub
from backline.commands._cases_common import run as _run
from backline.errors import BacklineError


case_app = typer.Typer(help="Escalation cases on the local database.\n\nExamples:\n\n"
                            "  backline case new 'Gateway OOM' --product gateway --version 7.2 --org acme "
                            "--severity S2 --intake escalation.json --as sam\n\n"
                            "  backline case list --status new --as erin\n\n"
                            "  backline case note ESC-1001 'Looking at the heap dump' --public --as erin",
                       no_args_is_help=True)


def _parse(fn, text):
    """Parse a status/severity given on the command line (a bad one is a usage error)."""
    try:
        return fn(text)
    except BacklineError as exc:
        fail(str(exc), 2)


def _out() -> Console:
    return Console(highlight=False)


@case_app.command("new")
def new(title: str = typer.Argument(...), product: str = typer.Option(..., "--product"),
        version: str = typer.Option(..., "--version"), org: str = typer.Option(..., "--org"),
        severity: str = typer.Option("S3", "--severity", help="S1..S4"),
        intake: Optional[Path] = typer.Option(None, "--intake", help="JSON file: symptoms, business_impact, "
                                              "environment, steps_to_reproduce, already_tried, expected, actual, evidence"),
        field: List[str] = typer.Option([], "--field", "-f", help="One intake item, NAME=TEXT (repeatable)."),
        as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """Escalate a case; an incomplete escalation goes to needs_info with what is missing."""
    data: dict = {}
    if intake is not None:
        try:
            data = json.loads(intake.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("top level must be an object")
        except (OSError, ValueError) as exc:
            fail(f"{intake}: cannot read intake JSON: {exc}", 2)
    for item in field:
        name, sep, text = item.partition("=")
        if not sep or not name:
            fail(f"--field wants NAME=TEXT, got {item!r}", 2)
        data[name.strip()] = text
    sev = _parse(CaseSeverity.parse, severity)
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    case = _run(lambda: hub.cases.create(user, NewCase(title, product, version, org, sev, data)))
    if as_json:
        typer.echo(json.dumps(case.to_json(), indent=2))
        return
    _out().print(f"{case.key} {case.status.value} (intake score {case.intake_score:.0%})")
    for name in case.intake_missing:
        _out().print(f"  missing: {name}")


@case_app.command("list")
def list_(status: List[str] = typer.Option([], "--status"), severity: List[str] = typer.Option([], "--severity"),
          owner: Optional[str] = typer.Option(None, "--owner"), limit: int = typer.Option(100, "--limit", min=1),
          as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """List the cases you can see."""
    statuses = [_parse(CaseStatus.parse, s) for s in status]
    sevs = [_parse(CaseSeverity.parse, s) for s in severity]
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    cases = _run(lambda: hub.cases.list(user, status=statuses, severity=sevs, owner=owner, limit=limit))
    if as_json:
        typer.echo(json.dumps([c.to_json() for c in cases], indent=2))
        return
    table = Table("key", "sev", "status", "owner", "org", "title")
    for c in cases:
        table.add_row(c.key, c.severity.value, c.status.value, c.owner or "-", c.org, c.title)
    _out().print(table)


@case_app.command("show")
def show(key: str, as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """Show one case with its notes."""
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    case = _run(lambda: hub.cases.get(user, key))
    notes = _run(lambda: hub.cases.notes(user, key))
    if as_json:
        typer.echo(json.dumps({**case.to_json(), "notes": [n.to_json() for n in notes]}, indent=2))
        return
    out = _out()
    out.print(f"[bold]{case.key}[/] {case.title}")
    out.print(f"{case.severity.value} {case.status.value} | {case.product} {case.version} | {case.org} | "
              f"owner {case.owner or '-'}")
    if case.intake_missing:
        out.print("missing: " + ", ".join(case.intake_missing))
    for n in notes:
        out.print(f"- [{n.visibility.value}] {n.author} {n.created_at:%Y-%m-%d %H:%M}: {n.body}")


@case_app.command("note")
def note(key: str, body: str, public: bool = typer.Option(False, "--public", help="Customer-facing note."),
         as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT) -> None:
    """Add a note (internal unless --public)."""
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    n = _run(lambda: hub.cases.add_note(user, key, body, "public" if public else "internal"))
    typer.echo(f"note {n.id} added to {key} ({n.visibility.value})")


@case_app.command("assign")
def assign(key: str, owner: str, co_owner: List[str] = typer.Option([], "--co-owner"),
           as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT) -> None:
    """Give the case an owner (and co-owners)."""
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    c = _run(lambda: hub.cases.assign(user, key, owner, co_owners=co_owner or None))
    typer.echo(f"{c.key} owner {c.owner}" + (f", co-owners {', '.join(c.co_owners)}" if c.co_owners else ""))


@case_app.command("status")
def status(key: str, new_status: str = typer.Argument(..., metavar="STATUS"),
           reason: Optional[str] = typer.Option(None, "--reason"),
           as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT) -> None:
    """Move the case to STATUS (checked against the allowed transitions)."""
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    c = _run(lambda: hub.cases.set_status(user, key, new_status, reason=reason))
    typer.echo(f"{c.key} {c.status.value}")


@case_app.command("sla")
def sla(key: str, as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """Show the SLA clocks of a case."""
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    clocks = _run(lambda: hub.cases.sla_clocks(user, key))
    if as_json:
        typer.echo(json.dumps([c.to_json() for c in clocks], indent=2))
        return
    for line in summarise(clocks):
        typer.echo(line)


@case_app.command("bug")
def bug(key: str, fmt: str = typer.Option("markdown", "--format", help="markdown|jira|github"),
        root_cause: Optional[str] = typer.Option(None, "--root-cause"),
        suggested_fix: Optional[str] = typer.Option(None, "--suggested-fix"),
        as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT) -> None:
    """Draft a bug report from the case and print it."""
    if fmt not in ("markdown", "jira", "github"):
        fail(f"--format must be markdown, jira or github, not {fmt!r}", 2)
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    b = _run(lambda: hub.bugs.create(user, key, root_cause=root_cause, suggested_fix=suggested_fix))
    out = _run(lambda: hub.bugs.render(user, b["id"], fmt))
    typer.echo(out if isinstance(out, str) else json.dumps(out, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(case_app, name="case")
