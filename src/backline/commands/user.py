"""``backline user``: people and their API tokens."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from backline.commands._cases_common import DB_OPT, fail, open_hub
from backline.errors import BacklineError

user_app = typer.Typer(help="Manage users, API tokens and web passwords.\n\nExamples:\n\n"
                            "  backline user add ada --role engineer\n\n"
                            "  printf '%s' \"$PW\" | backline user add carl --role customer --org acme --password-stdin\n\n"
                            "  backline user passwd ada",
                       no_args_is_help=True)


def _read_password(from_stdin: bool, prompt: bool = True) -> str | None:
    """The password from standard input (one line; a trailing newline is dropped) or a prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    if not prompt:
        return None
    if not sys.stdin.isatty():
        return _read_password(True)
    return typer.prompt("New password", hide_input=True, confirmation_prompt=True)


@user_app.command("add")
def add(name: str = typer.Argument(..., help="Unique user name."),
        role: str = typer.Option(..., "--role", help="customer|support|engineer|developer|manager|admin"),
        org: Optional[str] = typer.Option(None, "--org", help="Customer organisation (required for customers)."),
        team: Optional[str] = typer.Option(None, "--team", help="Support team (support sees its team's cases)."),
        email: Optional[str] = typer.Option(None, "--email", help="Address for notifications."),
        password_stdin: bool = typer.Option(False, "--password-stdin",
                                            help="Read a web password (8+ characters) from standard input."),
        database_url: Optional[str] = DB_OPT) -> None:
    """Add a user and print their API token (send it as 'Authorization: Bearer <token>').

    With --password-stdin the user can also log in to the web workbench."""
    password = _read_password(True) if password_stdin else None
    hub = open_hub(database_url)
    try:
        _u, token = hub.users.add(name, role, org=org, team=team, email=email, password=password)
    except BacklineError as exc:
        fail(str(exc), 2)
    typer.echo(token)


@user_app.command("token")
def token(name: str = typer.Argument(...), database_url: Optional[str] = DB_OPT) -> None:
    """Issue a new token for NAME (the old one stops working) and print it."""
    hub = open_hub(database_url)
    try:
        typer.echo(hub.users.rotate(name))
    except BacklineError as exc:
        fail(str(exc), 2)


@user_app.command("passwd")
def passwd(name: str = typer.Argument(..., help="The user whose password to set."),
           password_stdin: bool = typer.Option(False, "--password-stdin",
                                               help="Read the password from standard input instead of a prompt."),
           database_url: Optional[str] = DB_OPT) -> None:
    """Set NAME's web password (from a prompt, or standard input); their open web sessions end.

    Example: backline user passwd ada"""
    password = _read_password(password_stdin)
    hub = open_hub(database_url)
    try:
        hub.users.set_password(name, password or "")
    except BacklineError as exc:
        fail(str(exc), 2)
    typer.echo(f"password of {name} set; their web sessions ended")


@user_app.command("disable")
def disable(name: str = typer.Argument(...), database_url: Optional[str] = DB_OPT) -> None:
    """Disable NAME: their API token and web sessions are refused from the next request on."""
    hub = open_hub(database_url)
    try:
        hub.users.set_active(name, False)
    except BacklineError as exc:
        fail(str(exc), 2)
    typer.echo(f"{name} disabled")


@user_app.command("enable")
def enable(name: str = typer.Argument(...), database_url: Optional[str] = DB_OPT) -> None:
    """Enable NAME again (they log in anew)."""
    hub = open_hub(database_url)
    try:
        hub.users.set_active(name, True)
    except BacklineError as exc:
        fail(str(exc), 2)
    typer.echo(f"{name} enabled")


@user_app.command("list")
def list_(database_url: Optional[str] = DB_OPT) -> None:
    """List users."""
    for u in open_hub(database_url).users.list():
        typer.echo(f"{u.name}\t{u.role.value}\t{u.org or '-'}\t{u.team or '-'}\t{u.email or '-'}")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
