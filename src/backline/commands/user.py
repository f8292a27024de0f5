"""``backline user``: people and their API tokens."""

from __future__ import annotations

from typing import Optional

import typer

from backline.commands._cases_common import DB_OPT, fail, open_hub
from backline.errors import BacklineError

user_app = typer.Typer(help="Manage users and API tokens.\n\nExample:\n\n"
                            "  backline user add ada --role engineer\n\n"
                            "  backline user add carl --role customer --org acme",
                       no_args_is_help=True)


@user_app.command("add")
def add(name: str = typer.Argument(..., help="Unique user name."),
        role: str = typer.Option(..., "--role", help="customer|support|engineer|developer|manager|admin"),
        org: Optional[str] = typer.Option(None, "--org", help="Customer organisation (required for customers)."),
        team: Optional[str] = typer.Option(None, "--team", help="Support team (support sees its team's cases)."),
        email: Optional[str] = typer.Option(None, "--email", help="Address for notifications."),
        database_url: Optional[str] = DB_OPT) -> None:
    """Add a user and print their API token (send it as 'Authorization: Bearer <token>')."""
    hub = open_hub(database_url)
    try:
        _u, token = hub.users.add(name, role, org=org, team=team, email=email)
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


@user_app.command("list")
def list_(database_url: Optional[str] = DB_OPT) -> None:
    """List users."""
    for u in open_hub(database_url).users.list():
        typer.echo(f"{u.name}\t{u.role.value}\t{u.org or '-'}\t{u.team or '-'}\t{u.email or '-'}")


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
