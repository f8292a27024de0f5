"""Running the API: the app factory used by ``backline serve`` (one or more uvicorn workers)
and the background work each server process does (analysis jobs, SLA sweep, outbox).

Settings come from the environment so that every worker process builds the
same thing: ``BACKLINE_DATABASE_URL`` (or SQLite in ``BACKLINE_HOME``),
``BACKLINE_NOTIFY_CONFIG`` (a JSON file, see :class:`NotifyConfig`),
``BACKLINE_BACKGROUND`` (``0`` turns background work off), ``BACKLINE_MAX_UPLOAD`` (bytes of
one uploaded file; 20 GiB by default), ``BACKLINE_ANALYZER_TIMEOUT`` and
``BACKLINE_ANALYZER_MEMORY_MB`` (the hard limits of every analyzer task the job runner starts),
``BACKLINE_DASK_SCHEDULER`` (a Dask scheduler whose cluster runs the jobs' analyzer tasks; the
evidence store's folder must be a path every worker sees).
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from backline.cases.evidence import JobRunner
from backline.cases.hub import Hub
from backline.cases.notify import Dispatcher, NotifyConfig, sla_sweep
from backline.errors import UsageError
from backline.web.app import create_app

log = logging.getLogger(__name__)


def notify_config_from_env() -> NotifyConfig | None:
    path = os.environ.get("BACKLINE_NOTIFY_CONFIG")
    if not path:
        return None
    try:
        return NotifyConfig.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read notification settings: {exc}", artifact=path) from None


class Background:
    """Analysis jobs plus a periodic SLA sweep and outbox delivery, in threads of this process."""

    def __init__(self, hub: Hub, period_s: float = 30.0):
        self.hub = hub
        self.period_s = period_s
        from backline.analyzers.cluster import scheduler_address
        self.jobs = JobRunner(hub.cases, hub.store, worker=f"pid{os.getpid()}", knowledge=hub.knowledge,
                              scheduler=scheduler_address(None))
        self.indexer = hub.similar.indexer
        self.dispatcher = Dispatcher(hub.engine, hub.notify, hub.clock) if hub.notify else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.jobs.start()
        self.indexer.start()
        if self.dispatcher is not None:
            self.dispatcher.recover()

        def loop() -> None:
            while not self._stop.wait(self.period_s):
                try:
                    sla_sweep(self.hub.cases)
                    if self.dispatcher is not None:
                        self.dispatcher.deliver_due()
                except Exception:  # noqa: BLE001 - keep serving; the next round retries
                    log.exception("background round failed")

        self._thread = threading.Thread(target=loop, name="backline-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.jobs.stop()
        self.indexer.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _warm(app: FastAPI) -> None:
    """The SLA clock plans of every open case, made once at start (the queue and dashboard use them)."""
    queue = getattr(app.state, "queue", None)
    if queue is None:
        return
    t0 = time.perf_counter()
    try:
        n = queue.warm()
    except Exception:  # noqa: BLE001 - only a head start; requests make what is missing
        log.exception("warming the queue's clocks failed")
        return
    log.info("clock plans of %d open cases made in %.1f s", n, time.perf_counter() - t0)


def app_from_env() -> FastAPI:
    """The uvicorn factory (``backline.web.server:app_from_env``)."""
    from backline.cases.evidence import MAX_UPLOAD
    try:
        max_upload = int(os.environ.get("BACKLINE_MAX_UPLOAD") or MAX_UPLOAD)
    except ValueError:
        raise UsageError(f"BACKLINE_MAX_UPLOAD={os.environ['BACKLINE_MAX_UPLOAD']!r} is not a number of bytes") from None
    hub = Hub.open(os.environ.get("BACKLINE_DATABASE_URL") or None, migrate=False,
                   notify=notify_config_from_env(), max_upload=max_upload)
    swept = hub.store.sweep()          # partial uploads of a killed server (no live writer holds them)
    if swept:
        log.warning("removed %d partial upload(s) left by a stopped server", swept)
    background = os.environ.get("BACKLINE_BACKGROUND", "1") != "0"
    app = create_app(hub)
    inner = app.router.lifespan_context

    threads = int(os.environ.get("BACKLINE_THREADS", "8"))

    @asynccontextmanager
    async def lifespan(a):
        # A few threads per process: requests queue fairly on the event loop instead of
        # fighting over the GIL (which is what made the slow tail).
        import anyio.to_thread
        anyio.to_thread.current_default_thread_limiter().total_tokens = max(1, threads)
        # Start-up objects never die: keep them out of the collector's way (shorter pauses).
        gc.collect()
        gc.freeze()
        bg = Background(hub) if background else None
        if bg:
            bg.start()
        threading.Thread(target=_warm, args=(a,), name="backline-warm", daemon=True).start()
        try:
            async with inner(a) as state:
                yield state
        finally:
            if bg:
                bg.stop()
            hub.engine.dispose()

    app.router.lifespan_context = lifespan
    return app
