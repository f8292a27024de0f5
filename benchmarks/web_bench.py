"""Server time and size of the web workbench's pages on PostgreSQL, against the REST API on the same data.

Makes a private database (dropped afterwards) with 10,000 cases over a year (about 15% open,
with status histories and contact times so the SLA clocks run, breach and warn), 100,000 notes,
audit entries, and the example bundle's real findings and timeline events on 1,000 of the
cases; starts ``backline serve --workers 2``; logs in as a manager; then requests, one at a
time, each page many times and reads the server's own ``Server-Timing`` (time to the first byte
of the response) and the transferred size:

* ``/cases`` (the queue, SLA urgency order over every open case), page 1 and a later page;
* ``/cases/{key}`` for random cases (and for those with findings);
* ``/dashboard``;
* the baseline in the same run: the REST API's ``GET /api/cases`` and ``GET /api/cases/{key}``.

Targets (issue 10): queue and case page p95 <= 150 ms, dashboard p95 <= 500 ms, no page over
300 KB.  Prints p50/p95 per request kind, the ratio of each page to its API baseline, and PASS/FAIL.

    python benchmarks/web_bench.py                 # 10,000 cases, 100,000 notes
    python benchmarks/web_bench.py --cases 2000 --notes 20000 --requests 100
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert, select, text, update

from backline.testing import free_port, wait_healthy

PG = os.environ.get("BACKLINE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
ROOT = Path(__file__).resolve().parents[1]
TARGETS_MS = {"queue": 150.0, "case": 150.0, "dashboard": 500.0}
MAX_PAGE = 300 * 1024
PASSWORD = "bench passphrase 1"
FULL = {"symptoms": "Orders fail with HTTP 500 when reserving stock", "business_impact": "EU shop down",
        "environment": "orders 4.2.1 on Debian 12", "steps_to_reproduce": "Place an order with two items",
        "already_tried": "Restarted", "expected": "Reserved", "actual": "HTTP 500", "evidence": "bundle.zip"}
WORDS = ("the reservation pool refused connections again after the deploy; customer confirms the workaround "
         "holds but latency is up; attached new logs and a capture from both ends; escalating to development "
         "with the crash signature; waiting for the maintenance window to apply the hotfix build").split()


def populate(url: str, n_cases: int, n_notes: int, rng: random.Random) -> tuple[list[str], list[str], str]:
    """Fill the database; returns (all keys, keys with findings, the manager's API token)."""
    from backline.cases.hub import Hub
    from backline.cases.users import hash_password
    from backline.storage import tables as T

    hub = Hub.open(url, blob_root=Path(f"/tmp/{Path(url).name}-blobs"))
    pw = hash_password(PASSWORD)
    _, token = hub.users.add("mia", "manager")
    staff = [hub.users.add(f"eng{i:02d}", "engineer")[0] for i in range(20)]
    support = [hub.users.add(f"sup{i:02d}", "support", team="emea")[0] for i in range(10)]
    with hub.engine.begin() as conn:
        conn.execute(update(T.users).values(password_hash=pw))
    now = datetime.now(timezone.utc)
    statuses_open = ["new", "investigating", "waiting_customer", "waiting_development", "fix_pending", "needs_info"]
    cases, hist = [], []
    for i in range(n_cases):
        created = now - timedelta(minutes=rng.randint(10, 365 * 24 * 60))
        is_open = rng.random() < 0.15 or created > now - timedelta(days=3)
        status = rng.choice(statuses_open) if is_open else rng.choice(["resolved", "closed"])
        first = created + timedelta(minutes=rng.expovariate(1 / 240)) if rng.random() < 0.9 else None
        if first and first > now:
            first = None
        resolved = None if is_open else created + timedelta(hours=rng.expovariate(1 / 72))
        if resolved and resolved > now:
            resolved = now - timedelta(minutes=1)
        updated = resolved or (first or created)
        owner = rng.choice(staff).id if status != "new" or rng.random() < 0.5 else None
        cases.append(dict(key=f"tmp-{i}", title=f"{rng.choice(['Orders', 'Gateway', 'Billing', 'Search'])} "
                                                 f"{rng.choice(['fail', 'time out', 'crash', 'leak memory'])} #{i}",
                          product=rng.choice(["orders", "gateway", "billing", "search"]), version="4.2.1",
                          org=f"org{rng.randint(0, 49):02d}", severity=rng.choice(["S1", "S2", "S2", "S3", "S3", "S4"]),
                          status=status, owner_id=owner, co_owners=[], team="emea", created_by=rng.choice(support).id,
                          created_at=created, updated_at=updated, row_version=1, intake=FULL, intake_score=1.0,
                          intake_missing=[], sla_policy="default", calendar=None, first_response_at=first,
                          last_customer_contact_at=created, last_staff_contact_at=first, resolved_at=resolved,
                          returned_for_info=status == "needs_info"))
    with hub.engine.begin() as conn:
        conn.execute(insert(T.cases), cases)
        conn.execute(text("UPDATE cases SET key = 'ESC-' || (1000 + id)"))
        rows = conn.execute(select(T.cases.c.id, T.cases.c.key, T.cases.c.created_at, T.cases.c.status,
                                   T.cases.c.resolved_at, T.cases.c.created_by)).all()
        for cid, _key, created, status, resolved, by in rows:
            hist.append(dict(case_id=cid, from_status=None, to_status="new", at=created, by_id=by))
            if status != "new":
                at = created + timedelta(minutes=30)
                mid = "investigating" if status in ("resolved", "closed") else status
                hist.append(dict(case_id=cid, from_status="new", to_status=mid, at=min(at, resolved or at), by_id=by))
                if status in ("resolved", "closed"):
                    hist.append(dict(case_id=cid, from_status=mid, to_status=status, at=resolved, by_id=by))
        conn.execute(insert(T.status_history), hist)
        ids = [r[0] for r in rows]
        # notes: a skewed number per case (a few long threads), 60-700 characters each
        weights = [rng.paretovariate(1.6) for _ in ids]
        scale = n_notes / sum(weights)
        per_case = [max(0, round(w * scale)) for w in weights]
        per_case = [min(p, 400) for p in per_case]
        notes, audit = [], []
        authors = [u.id for u in staff]
        for cid, created, count in zip(ids, [r[2] for r in rows], per_case):
            for j in range(count):
                body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 110)))
                at = created + timedelta(minutes=10 * (j + 1))
                notes.append(dict(case_id=cid, author_id=rng.choice(authors), body=body,
                                  visibility=rng.choice(["internal", "public"]), created_at=at, updated_at=at,
                                  revisions=0))
            for j in range(5):
                audit.append(dict(at=created, actor_id=None, actor="system", case_id=cid, entity="case",
                                  entity_id=str(cid), action="update", before={"severity": "S3"},
                                  after={"severity": "S2"}))
            if len(notes) >= 20_000:
                conn.execute(insert(T.notes), notes)
                notes = []
        if notes:
            conn.execute(insert(T.notes), notes)
        conn.execute(insert(T.audit_log), audit)
        print(f"  notes stored: {conn.execute(text('SELECT count(*) FROM notes')).scalar():,} "
              f"(most on one case: {max(per_case)})", flush=True)
    # the example bundle's real findings and events on 1,000 cases
    keys = [r[1] for r in rows]
    with_findings = rng.sample(keys, min(1000, len(keys)))
    from backline.cases.evidence import JobRunner
    first = with_findings[0]
    mia = hub.users.get("mia")
    with open(ROOT / "examples" / "case-001" / "bundle.zip", "rb") as f:
        hub.evidence.upload(mia, first, "bundle.zip", f)
    JobRunner(hub.cases, hub.store).run_pending()
    with hub.engine.begin() as conn:
        src = conn.execute(select(T.cases.c.id).where(T.cases.c.key == first)).scalar()
        ev = conn.execute(select(T.evidence).where(T.evidence.c.case_id == src)).mappings().one()
        job = conn.execute(select(T.jobs).where(T.jobs.c.case_id == src)).mappings().one()
        fnd = conn.execute(select(T.findings).where(T.findings.c.case_id == src)).mappings().all()
        evs = conn.execute(select(T.case_events).where(T.case_events.c.case_id == src)).mappings().all()
        for key in with_findings[1:]:
            cid = conn.execute(select(T.cases.c.id).where(T.cases.c.key == key)).scalar()
            eid = conn.execute(insert(T.evidence).values(case_id=cid, filename="bundle.zip", sha256=ev["sha256"],
                                                         size=ev["size"], uploaded_by=ev["uploaded_by"],
                                                         uploaded_at=ev["uploaded_at"])).inserted_primary_key[0]
            jid = conn.execute(insert(T.jobs).values(case_id=cid, evidence_id=eid, status="done", attempts=1,
                                                     created_at=job["created_at"])).inserted_primary_key[0]
            conn.execute(insert(T.findings), [{**{k: v for k, v in f.items() if k != "id"}, "case_id": cid,
                                               "job_id": jid, "evidence_id": eid} for f in fnd])
            if evs:
                conn.execute(insert(T.case_events), [{**{k: v for k, v in e.items() if k != "id"}, "case_id": cid,
                                                      "job_id": jid, "evidence_id": eid} for e in evs])
        conn.execute(text("ANALYZE"))
    print(f"  {len(fnd)} findings and {len(evs)} events on each of {len(with_findings):,} cases", flush=True)
    hub.engine.dispose()
    return keys, with_findings, token


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--notes", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=200, help="requests per kind")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    db = f"bl_webbench_{secrets.token_hex(4)}"
    admin = create_engine(PG + "/test", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{db}"'))
    url = f"{PG}/{db}"
    proc = None
    try:
        t0 = time.perf_counter()
        print(f"populating {args.cases:,} cases and {args.notes:,} notes ...", flush=True)
        keys, with_findings, token = populate(url, args.cases, args.notes, rng)
        print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)
        port = free_port()
        exe = Path(sys.executable).with_name("backline")
        env = {**os.environ, "BACKLINE_HOME": f"/tmp/{db}-home"}
        proc = subprocess.Popen([str(exe), "serve", "--port", str(port), "--database-url", url,
                                 "--workers", str(args.workers), "--no-background"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, proc, seconds=60)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        web = httpx.Client(base_url=base, timeout=60)
        page = web.get("/login")
        csrf = re.search(r'action="/login">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', page.text)
        r = web.post("/login", data={"username": "mia", "password": PASSWORD, "csrf_token": csrf.group(1)})
        assert r.status_code in (200, 303), r.text[:300]
        api = httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"})

        def measure(client, path: str) -> tuple[float, int]:
            resp = client.get(path)
            if resp.status_code != 200:
                raise SystemExit(f"{path}: {resp.status_code} {resp.text[:300]}")
            m = re.search(r"dur=([0-9.]+)", resp.headers.get("server-timing", ""))
            return float(m.group(1)), len(resp.content)

        # the first queue requests right after start (each process makes its clock plans at start, in a thread)
        cold = [measure(web, "/cases")[0] for _ in range(2 * args.workers)]
        kinds = {
            "queue": lambda: measure(web, "/cases"),
            "queue p.4 by update": lambda: measure(web, "/cases?status=all&sort=updated&page=4"),
            "case": lambda: measure(web, f"/cases/{rng.choice(keys)}"),
            "case w/ findings": lambda: measure(web, f"/cases/{rng.choice(with_findings)}"),
            "dashboard": lambda: measure(web, "/dashboard"),
            # the case page's similar-cases section, fetched by the page once loaded (no target of its own)
            "similar section": lambda: measure(web, f"/cases/{rng.choice(keys)}/similar"),
            "API /api/cases": lambda: measure(api, "/api/cases"),
            "API /api/cases/{key}": lambda: measure(api, f"/api/cases/{rng.choice(keys)}"),
        }
        results = {}
        for name, fn in kinds.items():
            n = max(20, args.requests // 4) if name == "dashboard" else args.requests
            samples = [fn() for _ in range(n)]
            ms = sorted(s[0] for s in samples)
            results[name] = (statistics.median(ms), ms[min(len(ms) - 1, int(len(ms) * 0.95))], max(s[1] for s in samples),
                             len(ms))
        with create_engine(url).connect() as c:
            busiest = c.execute(text("SELECT c.key FROM notes n JOIN cases c ON c.id = n.case_id "
                                     "GROUP BY c.key ORDER BY count(*) DESC LIMIT 1")).scalar()
        big = [measure(web, f"/cases/{busiest}") for _ in range(20)]
        results["case, most notes"] = (statistics.median(b[0] for b in big), sorted(b[0] for b in big)[18],
                                       max(b[1] for b in big), len(big))
        print(f"\n{args.cases:,} cases, {args.notes:,} notes, PostgreSQL, {args.workers} workers, sequential requests")
        print(f"queue, first requests after the server started (it makes the clock plans at start): {', '.join(f'{x:.0f}' for x in cold)} ms")
        print(f"{'request':<24}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max size':>11}")
        for name, (p50, p95, size, n) in results.items():
            print(f"{name:<24}{n:>5}{p50:>9.1f}{p95:>9.1f}{size / 1024:>9.1f} KB")
        q, cp, api_l, api_c = (results["queue"][1], results["case"][1], results["API /api/cases"][1],
                               results["API /api/cases/{key}"][1])
        print(f"\nratio queue p95 / API list p95:      {q / api_l:.2f}")
        print(f"ratio case page p95 / API case p95:  {cp / api_c:.2f}")
        ok = True
        for name, (_p50, p95, size, _n) in results.items():
            kind = "queue" if name.startswith("queue") else "case" if name.startswith("case") else \
                "dashboard" if name == "dashboard" else None
            if kind and p95 > TARGETS_MS[kind]:
                print(f"over target: {name} p95 {p95:.0f} ms > {TARGETS_MS[kind]:.0f} ms")
                ok = False
            if not name.startswith("API") and size > MAX_PAGE:
                print(f"over target: {name} {size / 1024:.0f} KB > {MAX_PAGE // 1024} KB")
                ok = False
        print("RESULT " + ("PASS" if ok else "FAIL"))
        return 0 if ok else 1
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()
        import shutil
        shutil.rmtree(f"/tmp/{db}-blobs", ignore_errors=True)
        shutil.rmtree(f"/tmp/{db}-home", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
