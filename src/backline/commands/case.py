"""``backline case``: the case workflow on the local database.

Every command acts as a user (``--as NAME`` or ``BACKLINE_USER``) and is
checked like the API.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
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
                            "  backline case note ESC-1001 'Looking at the heap dump' --public --as erin\n\n"
                            "  backline case evidence ESC-1001 bundle.zip app.dmp --as erin\n\n"
                            "  backline case import tracker-export.jsonl --as erin",
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
    similar = _intake_similar(hub, user, case)
    if as_json:
        typer.echo(json.dumps(case.to_json() | {"similar": similar}, indent=2))
        return
    _out().print(f"{case.key} {case.status.value} (intake score {case.intake_score:.0%})")
    for name in case.intake_missing:
        _out().print(f"  missing: {name}")
    for s in similar:
        _out().print(f"  {s['hint']}", markup=False, soft_wrap=True)


def _intake_similar(hub, user, case) -> list[dict]:
    """Past cases the new escalation looks like; a failing search is a warning, never a failed intake."""
    try:
        return hub.similar.intake_matches(user, title=case.title, product=case.product, intake=case.intake,
                                          exclude=case.key)
    except BacklineError as exc:
        typer.echo(f"warning: similar cases not searched: {exc}", err=True)
        return []


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


class _Counting:
    """A binary file that moves a progress bar as it is read."""

    def __init__(self, f, advance):
        self.f = f
        self.advance = advance

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.advance(len(data))
        return data


@case_app.command("evidence")
def evidence(key: str, files: List[Path] = typer.Argument(..., metavar="FILE...", help="Files to upload."),
             no_wait: bool = typer.Option(False, "--no-wait", help="Return after the upload; the analysis runs "
                                          "in the background (in 'backline serve')."),
             as_: Optional[str] = AS_OPT, database_url: Optional[str] = DB_OPT, as_json: bool = JSON_OPT) -> None:
    """Upload evidence to a case, then wait for its analysis and show the findings count.

    Without --no-wait the analysis runs here unless a server has already taken it.

    Examples:

      backline case evidence ESC-1001 bundle.zip --as erin

      backline case evidence ESC-1001 app.log core.1234 --no-wait --as carl
    """
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from backline.cases.evidence import JobRunner

    for f in files:
        if not f.is_file():
            fail(f"{f}: not a readable file", 2)
        try:
            with open(f, "rb") as fh:
                fh.read(1)
        except OSError as exc:
            fail(f"{f}: cannot read: {exc.strerror or exc}", 2)
    hub = open_hub(database_url)
    user = acting_user(hub, as_)
    _run(lambda: hub.cases.get(user, key))                    # unknown case / not yours: before any upload
    err = Console(stderr=True, highlight=False)
    items = []
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as bar:
        for f in files:
            task = bar.add_task(f.name[-40:], total=f.stat().st_size)
            with open(f, "rb") as fh:
                items.append(_run(lambda: hub.evidence.upload(
                    user, key, f.name, _Counting(fh, lambda n: bar.advance(task, n)))))
    done = []
    for item in items:
        if not no_wait:
            runner = JobRunner(hub.cases, hub.store, worker=f"cli-{os.getpid()}")
            with err.status(f"analysing {item.filename}...") if err.is_terminal else nullcontext():
                if not runner.run_job(item.job_id):               # a server has it: wait for the server
                    while (state := _run(lambda: hub.evidence.job_state(user, key, item.id))).job_status in (
                            "queued", "running"):
                        time.sleep(1)
            item = _run(lambda: hub.evidence.job_state(user, key, item.id))
        done.append(item)
    counts = _finding_counts(hub, user, key)
    if as_json:
        typer.echo(json.dumps([dict(i.to_json(), findings=counts.get(i.id, 0) if counts is not None else None)
                               for i in done], indent=2))
    else:
        for i in done:
            found = f", {counts.get(i.id, 0)} finding(s)" if counts is not None and i.job_status == "done" else ""
            _out().print(f"{key}: evidence {i.id} {i.filename} ({i.size:,} bytes) analysis {i.job_status}{found}"
                         + (f": {i.job_error}" if i.job_error else ""), markup=False)
    if any(i.job_status == "failed" for i in done):
        raise typer.Exit(1)


def _finding_counts(hub, user, key: str) -> dict[int, int] | None:
    """Findings per evidence id (None for roles that may not read findings)."""
    from backline.cases.access import Action, allowed

    if not allowed(user, Action.READ_FINDINGS):
        return None
    out: dict[int, int] = {}
    for f in _run(lambda: hub.evidence.findings(user, key)):
        out[f["evidence_id"]] = out.get(f["evidence_id"], 0) + 1
    return out


def register(app: typer.Typer) -> None:
    from backline.commands.similar import attach_case_commands

    attach_case_commands(case_app)
    app.add_typer(case_app, name="case")
