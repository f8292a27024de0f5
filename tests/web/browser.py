"""Real-browser helpers: a live server in a thread, Debian's Chromium through Playwright, axe-core.

* :func:`live_server` serves ``create_app(hub)`` with uvicorn in a thread of the test process
  (the hub on the test's SQLite file or PostgreSQL schema) and runs the analysis jobs in
  another thread, as ``backline serve`` does.
* The browser is Debian's ``/usr/bin/chromium`` (nothing is downloaded); one per pytest worker.
* axe-core is fetched from npm at test time (pinned version, sha256 checked) by
  ``scripts/npm_fetch.sh`` into ``.cache/npm-vendor/`` and evaluated in the page through the
  DevTools protocol (so the page's CSP, which refuses inline scripts, stays on).
* Screenshots go to ``BACKLINE_SCREENSHOTS`` (default: a temporary folder).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path


from backline.testing import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("BACKLINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
AXE_VERSION = "4.11.1"
AXE_SHA256 = "7dbfabdfc6062936d79c873ddbb5f811a1219fca3928bd8cc9dd81f1e65f4720"
AXE_FILE = ROOT / ".cache" / "npm-vendor" / f"axe-{AXE_VERSION}.min.js"
PASSWORD = "correct horse battery"


@contextmanager
def live_server(hub):
    """``http://127.0.0.1:PORT`` serving the app over ``hub``, with a job runner thread."""
    import uvicorn

    from backline.cases.evidence import JobRunner
    from backline.web.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(hub), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    jobs = JobRunner(hub.cases, hub.store, worker="test")
    jobs.start(poll_seconds=0.2)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        yield base
    finally:
        jobs.stop()
        server.should_exit = True
        thread.join(timeout=10)


def axe_source() -> str:
    if not AXE_FILE.is_file():
        out = subprocess.run([str(ROOT / "scripts" / "npm_fetch.sh"), "axe-core", AXE_VERSION, "package/axe.min.js",
                              AXE_SHA256, str(AXE_FILE)], capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"cannot fetch axe-core from npm: {out.stderr.strip()}")
    return AXE_FILE.read_text(encoding="utf-8")


def axe_violations(page, source: str) -> list[dict]:
    """Serious and critical axe-core violations on the page as it is now (WCAG 2.x A/AA rules)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(source)
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return result


def screenshot_dir() -> Path:
    path = os.environ.get("BACKLINE_SCREENSHOTS")
    d = Path(path) if path else Path(tempfile.gettempdir()) / "backline-screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


def shot(page, name: str) -> Path:
    """A full-page screenshot (PNG)."""
    target = screenshot_dir() / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    return target


def log_in(page, base: str, name: str, password: str = PASSWORD) -> None:
    page.goto(base + "/login")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/cases*")


def dump(value) -> str:
    return json.dumps(value, indent=1)[:3000]
