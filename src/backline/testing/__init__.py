"""Helpers for tests of analyzers and rules.

``corpus_dir()`` finds the shared test corpus (``../shared/corpus`` beside the
project root, or ``BACKLINE_CORPUS``).  Tests read it in place; nothing from it
is copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[3]


def project_root() -> Path:
    return _ROOT


def corpus_dir() -> Path:
    env = os.environ.get("BACKLINE_CORPUS")
    if env:
        return Path(env)
    return _ROOT.parent / "shared" / "corpus"


def make_artifact(path: Path, kind=None, *, display: str | None = None):
    """An :class:`~backline.model.Artifact` for a file on disk, classified like intake does
    unless ``kind`` is given."""
    from backline.model import Artifact
    from backline.storage.blobs import sha256_file

    path = Path(path)
    fmt = ""
    problems: tuple[str, ...] = ()
    if kind is None:
        from backline.evidence import classify_file

        cls = classify_file(path)
        kind, fmt, problems = cls.kind, cls.format, tuple(cls.problems)
    return Artifact(path=display or path.name, kind=kind, size=path.stat().st_size,
                    sha256=sha256_file(path), local_path=path, format=fmt, problems=problems)


def run_analyzer(cls, path: Path, kind=None, **settings):
    """Run one analyzer class on one file the way the runner does; returns the TaskResult
    (``.run``, ``.events``, ``.findings``, ``.facts``)."""
    from backline.analyzers.runner import RunSettings, run_task

    art = make_artifact(path, kind)
    return run_task(cls, art, RunSettings(**settings))


#: A complete escalation for the example case (every intake item filled).
EXAMPLE_INTAKE = {"symptoms": "Orders fail to reserve stock", "business_impact": "Orders lost for 300 users",
                  "environment": "4.2.1 on RHEL 9", "steps_to_reproduce": "Place an order",
                  "already_tried": "Restart", "expected": "Reserved", "actual": "HTTP 500",
                  "evidence": ["bundle.zip"]}


def example_bundle() -> Path:
    """The example case's evidence, ``examples/case-001/bundle.zip`` (real programs failing)."""
    return _ROOT / "examples" / "case-001" / "bundle.zip"


def report_json(paths) -> bytes:
    """The ``report.json`` ``backline analyze --format json`` writes for ``paths`` (no evidence store)."""
    from backline.pipeline import AnalyzeOptions, analyze
    from backline.report import build_report, iter_json

    return "".join(iter_json(build_report(analyze([Path(p) for p in paths], AnalyzeOptions())))).encode()


def free_port(avoid: frozenset[int] | set[int] = frozenset()) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (above 1024 and not in ``avoid``:
    ports a dissector claims, say)."""
    import socket

    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 1024 and port not in avoid:
            return port
    raise RuntimeError("no free TCP port outside the ones to avoid")


def wait_healthy(base: str, proc=None, *, seconds: float = 90.0) -> None:
    """Wait until ``base + "/healthz"`` answers 200; RuntimeError (with the server's last stderr
    when ``proc`` is given) after ``seconds`` (generous: a server with several workers imports
    everything once per worker, slow on a loaded 2-core machine)."""
    import time

    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = ""
    if proc is not None and proc.stderr is not None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except Exception:       # noqa: BLE001 - still running: kill it
                proc.kill()
        tail = ": " + _read_available(proc.stderr, 3.0).decode(errors="replace")[-2000:]
    raise RuntimeError(f"{base} did not become healthy{tail}")


def _read_available(stream, seconds: float) -> bytes:
    """What ``stream`` (a pipe) holds, read for at most ``seconds``: a child of the server that
    outlived it may keep the pipe open, and a plain ``read()`` would then wait forever."""
    import os
    import select
    import time

    fd, data = stream.fileno(), b""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data


def backline_exe() -> list[str]:
    """The command that runs this checkout's ``backline`` (the venv's script beside the interpreter)."""
    import sys

    exe = Path(sys.executable).with_name("backline")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "backline.cli"]


def stop_process(proc, *, seconds: float = 10.0) -> None:
    """Stop a server the way Ctrl-C does (SIGINT), killing it if it has not exited after ``seconds``."""
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve_process(args, env: dict[str, str], *, port: int | None = None, stdout=None):
    """Start ``backline serve --port PORT ARGS`` as a real process and wait until it is healthy.

    A context manager yielding ``(base_url, proc)``; the server is stopped (SIGINT, then kill)
    when the block ends.  ``stdout`` defaults to DEVNULL; stderr is kept for the error message.
    """
    import contextlib
    import subprocess

    @contextlib.contextmanager
    def running():
        p = port or free_port()
        proc = subprocess.Popen(backline_exe() + ["serve", "--port", str(p), *args], env=env,
                                stdout=subprocess.DEVNULL if stdout is None else stdout, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{p}"
        try:
            wait_healthy(base, proc)
            yield base, proc
        finally:
            stop_process(proc)

    return running()


def local_dask_cluster(folder: Path, workers: int = 2):
    """A real Dask cluster on 127.0.0.1: ``dask scheduler`` and ``workers`` one-thread ``dask worker``
    processes (their output in ``folder``), ready when the block starts, stopped when it ends.

    A context manager yielding ``(address, processes)``; needs ``dask[distributed]``.
    """
    import contextlib
    import subprocess
    import sys
    import time

    dask = str(Path(sys.executable).with_name("dask"))

    @contextlib.contextmanager
    def running():
        from distributed import Client

        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        addr = f"tcp://127.0.0.1:{port}"
        procs, logs = [], []

        def start(name: str, args: list[str]) -> None:
            out = open(folder / f"{name}.txt", "w")
            logs.append(out)
            procs.append(subprocess.Popen([dask, *args], stdout=out, stderr=subprocess.STDOUT))

        try:
            start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"])
            for i in range(workers):
                start(f"worker{i}", ["worker", addr, "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
                                     "--no-dashboard", "--no-nanny", "--local-directory", str(folder / f"w{i}")])
            deadline = time.monotonic() + 120
            while True:
                try:
                    with Client(addr, timeout="5s", set_as_default=False) as c:
                        c.wait_for_workers(workers, timeout=90)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            yield addr, procs
        finally:
            for p in reversed(procs):
                p.terminate()
            for p in procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
            for f in logs:
                f.close()

    return running()
