"""Load benchmark of ``backline serve`` on PostgreSQL.

Starts the real server (``backline serve --workers N`` on a private database
created from the local PostgreSQL and dropped afterwards), drives it with
concurrent keep-alive clients issuing a mix of reads, notes and status
changes, prints requests/s, p50 and p99 latency, and then checks that every
acknowledged write is in the database (every note answered 201 is there
with its text; every status change answered 200 is in the case's history).

The mix includes evidence uploads (multipart, a few KiB each, about 3% of the
requests): every upload answered 201 must be in the database with its sha256 and
its bytes in the evidence store.

The target from issue 6 is the baseline: >= 500 requests/s with p99 <= 100 ms
and 0 lost writes on the 2-core machine; the ratio to it is printed.

``--soak MINUTES`` (issue 15) runs the same mix for that long, samples the resident
memory of every server worker each minute, and passes on 0 errors, 0 lost writes and
every worker's memory within 10% from minute 2 to the end (throughput and latency
are printed, not judged: on a shared machine others' load moves them).

    python benchmarks/api_bench.py --seconds 20 --clients 32
    nice -n 10 python benchmarks/api_bench.py --soak 10 --clients 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text

TARGET_RPS = 500.0
TARGET_P99_MS = 100.0
PG = os.environ.get("BACKLINE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
FULL = {"symptoms": "Gateway restarts with OutOfMemoryError", "business_impact": "4,000 users disconnected",
        "environment": "7.2.1 on RHEL 9", "steps_to_reproduce": "Run the nightly batch", "already_tried": "More heap",
        "expected": "Stable", "actual": "Dies", "evidence": ["gc.log"]}


class Conn:
    """A minimal HTTP/1.1 keep-alive client (cheap enough not to be the bottleneck)."""

    def __init__(self, host: str, port: int, token: str):
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: dict | None = None,
                      raw: tuple[str, bytes] | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode() if body is not None else (raw[1] if raw else b"")
        ctype = "application/json" if body is not None else (raw[0] if raw else None)
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {self.token}\r\n"
                f"Content-Length: {len(data)}\r\n" + (f"Content-Type: {ctype}\r\n" if ctype else "")
                + "\r\n").encode()
        self.writer.write(head + data)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            k = k.strip().lower()
            if k == "content-length":
                length = int(v)
            elif k == "connection" and v.strip().lower() == "close":
                close = True
        payload = await self.reader.readexactly(length) if length else b""
        if close:
            self.writer.close()
            self.writer = None
        return status, payload


def upload_body(rng: random.Random) -> tuple[str, bytes, str]:
    """(content type, multipart body, sha256 of the file) of a small log upload."""
    import hashlib
    lines = [f"2026-12-07 10:{i // 60 % 60:02d}:{i % 60:02d} {rng.choice(['INFO', 'WARN', 'ERROR'])} "
             f"worker-{rng.randrange(8)} request {secrets.token_hex(8)} took {rng.randrange(2000)} ms\n"
             for i in range(rng.randrange(20, 400))]
    data = "".join(lines).encode()
    b = secrets.token_hex(12)
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"app-{secrets.token_hex(3)}.log\"\r\n"
            f"Content-Type: text/plain\r\n\r\n").encode() + data + f"\r\n--{b}--\r\n".encode()
    return f"multipart/form-data; boundary={b}", body, hashlib.sha256(data).hexdigest()


async def client(conn: Conn, keys: list[str], deadline: float, lat: list[float], codes: Counter,
                 acked_notes: list[tuple[int, str]], acked_status: Counter, rng: random.Random,
                 kinds: dict[str, list[float]], acked_uploads: list[tuple[int, str]] | None = None) -> None:
    versions: dict[str, int] = {}
    while time.perf_counter() < deadline:
        key = rng.choice(keys)
        r = rng.random()
        t0 = time.perf_counter()
        kind = "read" if r < 0.60 else ("note" if r < 0.90 else "status")
        if acked_uploads is not None and r >= 0.97:
            kind = "upload"
            ctype, body_, sha = upload_body(rng)
            t0 = time.perf_counter()
            try:
                status, body = await conn.request("POST", f"/api/cases/{key}/evidence", raw=(ctype, body_))
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                status, conn.writer = 599, None            # a broken connection counts as an error
            if status == 201:
                acked_uploads.append((json.loads(body)["id"], sha))
            lat.append(time.perf_counter() - t0)
            kinds.setdefault(kind, []).append(lat[-1])
            codes[status] += 1
            continue
        if r < 0.30:
            status, body = await conn.request("GET", f"/api/cases/{key}")
            if status == 200:
                versions[key] = json.loads(body)["row_version"]
        elif r < 0.45:
            status, body = await conn.request("GET", f"/api/cases/{key}/notes")
        elif r < 0.60:
            status, body = await conn.request("GET", "/api/cases?limit=20")
        elif r < 0.90:
            text_ = f"note {secrets.token_hex(6)}"
            status, body = await conn.request("POST", f"/api/cases/{key}/notes",
                                              {"body": text_, "visibility": rng.choice(["internal", "public"])})
            if status == 201:
                acked_notes.append((json.loads(body)["id"], text_))
        else:
            if key not in versions:
                s0, b0 = await conn.request("GET", f"/api/cases/{key}")
                versions[key] = json.loads(b0)["row_version"]
                t0 = time.perf_counter()
            cur = versions[key]
            target = "waiting_customer" if rng.random() < 0.5 else "investigating"
            status, body = await conn.request("POST", f"/api/cases/{key}/status",
                                              {"status": target, "row_version": cur})
            if status == 200:
                versions[key] = json.loads(body)["row_version"]
                acked_status[key] += 1
            elif status in (409, 422):
                versions.pop(key, None)            # stale or same-state move: reload next time
        lat.append(time.perf_counter() - t0)
        kinds.setdefault(kind, []).append(lat[-1])
        codes[status] += 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--soak", type=float, default=None, metavar="MINUTES",
                    help="run this long; sample worker memory each minute; judge errors, lost writes, memory")
    args = ap.parse_args()
    if args.soak:
        args.seconds = args.soak * 60

    db = f"bl_bench_{secrets.token_hex(4)}"
    admin = create_engine(PG + "/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{db}"'))
    url = f"{PG}/{db}"
    proc = None
    try:
        from backline.cases.hub import Hub
        from backline.cases.model import CaseSeverity, Role
        from backline.cases.service import NewCase

        hub = Hub.open(url, blob_root=Path(f"/tmp/{db}-blobs"))
        erin, token = hub.users.add("erin", Role.ENGINEER)
        keys = []
        for i in range(args.cases):
            c = hub.cases.create(erin, NewCase(f"case {i}", "p", "1", f"org{i % 10}", CaseSeverity.S2, FULL))
            hub.cases.set_status(erin, c.key, "investigating")
            keys.append(c.key)
        hub.engine.dispose()

        port = free_port()
        exe = Path(sys.executable).with_name("backline")
        env = {**os.environ, "BACKLINE_HOME": f"/tmp/{db}-home"}
        proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--database-url", url,
                                 "--workers", str(args.workers), "--no-background"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        import httpx
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("server did not start: " + proc.stderr.read().decode()[-2000:])

        lat: list[float] = []
        codes: Counter = Counter()
        notes: list[tuple[int, str]] = []
        acked_status: Counter = Counter()
        kinds: dict[str, list[float]] = {}
        uploads: list[tuple[int, str]] = []
        rss: dict[int, list[int]] = {}            # worker pid -> resident KiB at each minute

        def workers() -> list[int]:
            out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(proc.pid)], capture_output=True,
                                 text=True).stdout
            return [int(line.split()[0]) for line in out.splitlines()
                    if line.strip() and "resource_tracker" not in line]

        def sample() -> None:
            for pid in workers():
                try:
                    kib = next(int(x.split()[1]) for x in Path(f"/proc/{pid}/status").read_text().splitlines()
                               if x.startswith("VmRSS:"))
                except (OSError, StopIteration):
                    continue
                rss.setdefault(pid, []).append(kib)

        async def sampler(deadline: float) -> None:
            sample()                               # minute 0
            minute = 0
            while True:
                minute += 1
                wake = deadline - args.seconds + minute * 60
                if wake > deadline + 1:
                    break
                await asyncio.sleep(max(0.0, wake - time.perf_counter()))
                sample()
                print(f"minute {minute:>3}  requests {len(lat):>8}  errors {sum(v for k, v in codes.items() if k >= 500)}"
                      f"  worker RSS MiB " + " ".join(f"{v[-1] / 1024:.0f}" for v in rss.values()), flush=True)

        async def run() -> float:
            conns = [Conn("127.0.0.1", port, token) for _ in range(args.clients)]
            for cn in conns:                       # warm-up: one request each
                await cn.request("GET", "/api/me")
            t0 = time.perf_counter()
            deadline = t0 + args.seconds
            extra = [sampler(deadline)] if args.soak else []
            await asyncio.gather(*(client(cn, keys, deadline, lat, codes, notes, acked_status, random.Random(i), kinds,
                                          uploads)
                                   for i, cn in enumerate(conns)), *extra)
            return time.perf_counter() - t0

        cpu0 = time.process_time()
        elapsed = asyncio.run(run())
        client_cpu = time.process_time() - cpu0
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        proc = None

        # every acknowledged write must be there
        check = create_engine(url)
        with check.connect() as c:
            stored = dict(c.execute(text("SELECT id, body FROM notes")).all())
            evidence = dict(c.execute(text("SELECT id, sha256 FROM evidence")).all())
            hist = dict(c.execute(text(
                "SELECT c.key, count(*) FROM status_history h JOIN cases c ON c.id = h.case_id GROUP BY c.key")).all())
        check.dispose()
        lost_notes = sum(1 for nid, body in notes if stored.get(nid) != body)
        lost_status = sum(max(0, (n + 2) - hist.get(k, 0)) for k, n in acked_status.items())
        extra_status = sum(max(0, hist.get(k, 0) - (acked_status[k] + 2)) for k in keys)
        blobs = Path(env["BACKLINE_HOME"]) / "blobs" / "sha256"
        lost_uploads = sum(1 for eid, sha in uploads
                           if evidence.get(eid) != sha or not (blobs / sha[:2] / sha[2:4] / sha).is_file())

        n = len(lat)
        lat_ms = sorted(x * 1000 for x in lat)
        rps = n / elapsed
        p50 = statistics.median(lat_ms)
        p99 = lat_ms[min(n - 1, int(n * 0.99))]
        server_errors = sum(v for k, v in codes.items() if k >= 500)
        print(f"requests        {n} in {elapsed:.1f} s with {args.clients} clients, {args.workers} workers")
        print(f"status codes    {dict(sorted(codes.items()))}")
        print(f"requests/s      {rps:.0f}   (target {TARGET_RPS:.0f}; ratio {rps / TARGET_RPS:.2f})")
        print(f"latency p50     {p50:.1f} ms")
        print(f"latency p99     {p99:.1f} ms   (target {TARGET_P99_MS:.0f}; ratio {p99 / TARGET_P99_MS:.2f})")
        for kind, xs in sorted(kinds.items()):
            xs = sorted(x * 1000 for x in xs)
            print(f"  {kind:<13} n={len(xs):<6} p50 {statistics.median(xs):.1f} ms  p99 {xs[int(len(xs) * 0.99)]:.1f} ms")
        print(f"load client     {client_cpu / elapsed:.0%} of one core (same machine)")
        print(f"acknowledged    {len(notes)} notes, {sum(acked_status.values())} status changes, {len(uploads)} uploads")
        lost = lost_notes + lost_status + lost_uploads
        print(f"lost writes     {lost}   (notes {lost_notes}, status {lost_status}, uploads {lost_uploads}; "
              f"unacknowledged extra status rows: {extra_status})")
        if args.soak:
            flat = True
            for pid, xs in rss.items():
                if len(xs) < 3:
                    flat = False                   # too short to judge
                    continue
                base = xs[2]                       # minute 2: warmed up
                worst = max(abs(x - base) for x in xs[2:]) / base
                end = (xs[-1] - base) / base
                flat &= worst <= 0.10
                print(f"worker {pid:<7} RSS MiB by minute {' '.join(f'{x / 1024:.0f}' for x in xs)}; "
                      f"minute 2 -> end {end:+.1%}, largest change from minute 2 {worst:.1%} (limit 10%)")
            print(f"machine         {os.cpu_count()} cores, load average at end {os.getloadavg()}")
            ok = lost == 0 and server_errors == 0 and flat and bool(rss)
        else:
            ok = rps >= TARGET_RPS and p99 <= TARGET_P99_MS and lost == 0 and server_errors == 0
        print("RESULT          " + ("PASS" if ok else "FAIL"))
        return 0 if ok else 1
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()
        import shutil
        shutil.rmtree(f"/tmp/{db}-blobs", ignore_errors=True)
        shutil.rmtree(f"/tmp/{db}-home", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
