"""``backline serve`` as a real process: migrates, serves, answers, runs background jobs."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from backline.testing import backline_exe, free_port, serve_process, wait_healthy




@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request):
    """None (SQLite in BACKLINE_HOME) or a PostgreSQL URL whose search_path is a fresh schema."""
    if request.param == "sqlite":
        yield None
        return
    from sqlalchemy import create_engine, text

    from backline.storage.testdb import PG_URL
    name = f"bl_s_{secrets.token_hex(5)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture
def server(tmp_path, database):
    env = {**os.environ, "BACKLINE_HOME": str(tmp_path / "home")}
    env.pop("BACKLINE_DATABASE_URL", None)
    db_args = ["--database-url", database] if database else []
    token = subprocess.run(backline_exe() + ["user", "add", "erin", "--role", "engineer"] + db_args, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    with serve_process(db_args, env) as (base, _proc):
        yield base, {"Authorization": f"Bearer {token}"}, tmp_path / "home", database


def test_serve_end_to_end(server):
    base, auth, home, database = server
    assert "/api/cases" in httpx.get(base + "/openapi.json").json()["paths"]
    assert httpx.get(base + "/api/cases").status_code == 401
    case = httpx.post(base + "/api/cases", headers=auth, json={
        "title": "Crash", "product": "p", "version": "1", "org": "acme", "severity": "S2",
        "intake": {"symptoms": "x" * 20}}).json()
    assert case["key"] == "ESC-1001" and case["status"] == "needs_info"
    r = httpx.post(base + "/api/cases/ESC-1001/evidence", headers=auth,
                   files={"file": ("app.log", b"2026-11-23 10:00:00 ERROR boom\n")})
    assert r.status_code == 201
    # the server's background runner picks the job up and runs the real pipeline
    for _ in range(100):
        ev = httpx.get(base + "/api/cases/ESC-1001/evidence", headers=auth).json()["evidence"][0]
        if ev["job"]["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert ev["job"]["status"] == "done", ev
    assert (home / "backline.db").exists() == (database is None)


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _two_workers(tmp_path):
    """``backline serve --workers 2`` on a fresh home and a free port: (env, process, base URL)."""
    env = {**os.environ, "BACKLINE_HOME": str(tmp_path / "home")}
    env.pop("BACKLINE_DATABASE_URL", None)
    port = free_port()
    proc = subprocess.Popen(backline_exe() + ["serve", "--port", str(port), "--workers", "2", "--no-background"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return env, proc, f"http://127.0.0.1:{port}"


def test_several_workers_share_the_port_and_stop_together(tmp_path):
    env, proc, base = _two_workers(tmp_path)
    port = int(base.rsplit(":", 1)[1])
    try:
        wait_healthy(base, proc)
        # every new connection is answered, whichever worker the kernel gives it to
        assert all(httpx.get(base + "/healthz", timeout=5).status_code == 200 for _ in range(20))
        workers = [c for c in _children(proc.pid) if c != proc.pid]
        assert len([w for w in workers if Path(f"/proc/{w}/cmdline").exists()]) >= 2
        # a second server on the same port is refused with one clear line, not a traceback
        second = subprocess.run(backline_exe() + ["serve", "--port", str(port), "--workers", "2"], env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "cannot listen" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    time.sleep(0.5)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()
                and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]]


def test_workers_stop_when_the_master_is_killed(tmp_path):
    """kill -9 of the master leaves no worker holding the port (they get SIGTERM from the kernel)."""
    _, proc, base = _two_workers(tmp_path)
    try:
        wait_healthy(base, proc)
        workers = [c for c in _children(proc.pid) if Path(f"/proc/{c}/cmdline").exists()
                   and b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) == 2, workers
    finally:
        proc.kill()
        proc.wait(timeout=15)

    def alive(pid: int) -> bool:
        try:
            return "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
        except OSError:
            return False
    deadline = time.monotonic() + 30
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [w for w in workers if alive(w)]
    with pytest.raises(httpx.HTTPError):
        httpx.get(base + "/healthz", timeout=2)
