"""``backline serve``: the case service's REST API."""

from __future__ import annotations

import os
from typing import Optional

import typer

from backline.commands._cases_common import DB_OPT, fail
from backline.errors import BacklineError


def serve(host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
          port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
          database_url: Optional[str] = DB_OPT,
          workers: int = typer.Option(1, "--workers", min=1, max=64, help="Server processes."),
          notify_config: Optional[str] = typer.Option(None, "--notify-config", envvar="BACKLINE_NOTIFY_CONFIG",
                                                      help="JSON file with SMTP and webhook settings."),
          background: bool = typer.Option(True, "--background/--no-background",
                                          help="Run analysis jobs, SLA sweeps and notifications in this server."),
          log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level.")) -> None:
    """Serve the REST API (OpenAPI at /openapi.json).

    Examples:

      backline serve --port 8080

      backline serve --database-url postgresql+psycopg://backline@db/backline --workers 2
    """
    import uvicorn

    from backline.cases.hub import Hub
    from backline.web.server import notify_config_from_env

    if database_url:
        os.environ["BACKLINE_DATABASE_URL"] = database_url
    if notify_config:
        os.environ["BACKLINE_NOTIFY_CONFIG"] = notify_config
    os.environ["BACKLINE_BACKGROUND"] = "1" if background else "0"
    try:
        notify_config_from_env()
        hub = Hub.open(database_url or None)    # checks the settings; migrates once, before the workers start
        hub.engine.dispose()
    except BacklineError as exc:
        fail(str(exc), 2)
    from rich.console import Console
    Console(stderr=True, highlight=False).print(
        f"Backline case service on http://{host}:{port} (OpenAPI at /openapi.json), {workers} worker(s)")
    uvicorn.run("backline.web.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, access_log=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
