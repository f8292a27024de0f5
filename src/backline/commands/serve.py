"""``backline serve``: the case service's REST API."""

from __future__ import annotations

import os
import socket
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
          analyzer_timeout: Optional[float] = typer.Option(
              None, "--analyzer-timeout", min=0, envvar="BACKLINE_ANALYZER_TIMEOUT",
              help="Seconds one analyzer may spend on one file of a job before it is killed (default 900; 0 = none)."),
          analyzer_memory: Optional[int] = typer.Option(
              None, "--analyzer-memory", min=0, envvar="BACKLINE_ANALYZER_MEMORY_MB",
              help="MiB one analyzer may allocate on one file of a job before it is stopped (default 4096; 0 = none)."),
          scheduler: Optional[str] = typer.Option(
              None, "--scheduler", envvar="BACKLINE_DASK_SCHEDULER",
              help="Run the analysis jobs on this Dask cluster (tcp://HOST:8786; needs the 'cluster' extra). "
                   "The evidence store's folder (BACKLINE_HOME) must be a path every worker sees."),
          log_level: str = typer.Option("warning", "--log-level", help="uvicorn log level.")) -> None:
    """Serve the web workbench (log in at /login) and the REST API (OpenAPI at /openapi.json).

    Examples:

      backline serve --port 8080

      backline serve --database-url postgresql+psycopg://backline@db/backline --workers 2

      backline serve --scheduler tcp://10.0.0.5:8786   # analysis jobs on a Dask cluster
    """
    import uvicorn

    from backline.cases.hub import Hub
    from backline.web.server import notify_config_from_env

    if database_url:
        os.environ["BACKLINE_DATABASE_URL"] = database_url
    if notify_config:
        os.environ["BACKLINE_NOTIFY_CONFIG"] = notify_config
    os.environ["BACKLINE_BACKGROUND"] = "1" if background else "0"
    if analyzer_timeout is not None:              # the job runner of every worker reads these
        os.environ["BACKLINE_ANALYZER_TIMEOUT"] = str(analyzer_timeout)
    if analyzer_memory is not None:
        os.environ["BACKLINE_ANALYZER_MEMORY_MB"] = str(analyzer_memory)
    if scheduler:
        os.environ["BACKLINE_DASK_SCHEDULER"] = scheduler
    try:
        notify_config_from_env()
        hub = Hub.open(database_url or None)    # checks the settings; migrates once, before the workers start
        hub.engine.dispose()
    except BacklineError as exc:
        fail(str(exc), 2)
    from rich.console import Console
    Console(stderr=True, highlight=False).print(
        f"Backline on http://{host}:{port}/ (web workbench; REST API under /api, OpenAPI at /openapi.json), "
        f"{workers} worker(s)")
    if workers > 1 and hasattr(socket, "SO_REUSEPORT"):
        _serve_reuseport(host, port, workers, log_level)
    else:
        uvicorn.run("backline.web.server:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, access_log=False)


def _worker(host: str, port: int, log_level: str, parent: int) -> None:
    """One server process with its own SO_REUSEPORT listening socket.  It stops (SIGTERM, a
    graceful shutdown) when the master goes, also when the master is killed with -9: orphaned
    workers would keep the port and answer with nobody to stop them."""
    import signal

    import uvicorn

    from backline.analyzers.isolation import die_with_parent

    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent:          # the master went before the line above took effect
        return

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    config = uvicorn.Config("backline.web.server:app_from_env", factory=True, log_level=log_level,
                            access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def _serve_reuseport(host: str, port: int, workers: int, log_level: str) -> None:
    """Several workers, each with its own listening socket on the same port (SO_REUSEPORT).

    The kernel spreads new connections evenly over the sockets.  With one shared socket
    (uvicorn's own multi-worker mode) whichever worker wins the accept race takes the
    connection, and long-lived keep-alive clients can pile up on one worker while the other
    idles: measured here as throughput flipping between ~490 and ~770 requests/s run to run.
    """
    import multiprocessing
    import signal

    # Fail early and clearly when the port is taken (also by another reuse-port server, which a
    # probe without SO_REUSEPORT cannot share the port with), before any worker starts.
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}", 2)
    finally:
        probe.close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(host, port, log_level, os.getpid()), daemon=False) for _ in range(workers)]
    for p in procs:
        p.start()

    def stop(signum, frame):  # noqa: ARG001 - signal handler signature
        for p in procs:
            if p.is_alive():
                p.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for p in procs:
            p.join()
    finally:
        stop(None, None)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
