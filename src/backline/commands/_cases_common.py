"""Shared bits of the case-service commands (``case``, ``user``, ``serve``)."""

from __future__ import annotations

import os
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.text import Text

from backline.cases.hub import Hub
from backline.errors import BacklineError, UsageError

AS_OPT = typer.Option(None, "--as", envvar="BACKLINE_USER", help="Act as this user.")
JSON_OPT = typer.Option(False, "--json", help="Print JSON.")
DB_OPT = typer.Option(None, "--database-url", envvar="BACKLINE_DATABASE_URL",
                      help="sqlite:///path or postgresql+psycopg://user@host/db (default: SQLite in BACKLINE_HOME).")


def fail(message: str, code: int = 1) -> NoReturn:
    """One ``error:`` line on stderr, then exit with ``code``.  The message is text, not Rich markup:
    it may hold names such as ``matchers[0]`` or ``[preauth]``."""
    line = Text("error:", style="bold red")
    line.append(f" {message}")
    Console(stderr=True, highlight=False).print(line, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run(fn):
    """``fn()``; a UsageError exits 2, any other BacklineError exits 1, each as one error line."""
    try:
        return fn()
    except UsageError as exc:
        fail(str(exc), 2)
    except BacklineError as exc:
        fail(str(exc), 1)


def open_hub(database_url: Optional[str]) -> Hub:
    try:
        return Hub.open(database_url)
    except BacklineError as exc:
        fail(str(exc), 2)


def acting_user(hub: Hub, name: Optional[str]):
    name = name or os.environ.get("BACKLINE_USER")
    if not name:
        fail("say who you are: --as NAME or BACKLINE_USER (make users with 'backline user add')", 2)
    try:
        return hub.users.get(name)
    except UsageError as exc:
        fail(str(exc), 2)
