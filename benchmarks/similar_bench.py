"""Similar-case search at scale: import, query latency and memory over 100,000 cases.

Synthetic cases are built from the corpus's gitbugs text (title of one report,
sentences of three; products and dates as in the corpus, spread over five
years) and imported with ``backline case import`` (``--no-embed`` path: the
cases, the lexical index and the term statistics).  Embedding is measured on a
sample of real case texts (cases per second on this machine) and the 100,000
case time is extrapolated from that.  The text of the synthetic cases comes from
all 1,790 reports (``--text-from sample``: only from the embedded sample, as the
first version did: every sentence then recurs in about 2,000 cases, which makes
the full-text index far more crowded than a real one).  Their stored vectors are
mixes of real MiniLM vectors of the sample (with ``--text-from all`` a case's
vector is not the vector of its own text; for time and memory that does not
matter), so the dense index has 100,000 realistic vectors without hours of
embedding.

Then, on the same database:

* baseline: ``CaseService.get`` (one case read, the cheapest service call);
* ``SimilarService.for_case`` for random cases (stored vectors; lexical + dense +
  title + time + signature, the shipped configuration);
* ``SimilarService.for_text`` for intake-like texts (includes embedding the text);

each as median and p95, with the ratio to the baseline.  Peak RSS of the process
(VmHWM) is printed after each phase; before the service phase (loading the
vectors, the queries) the bench drops its own synthetic records and resets the
peak (``/proc/self/clear_refs``), so "service peak" is what a server holding
the index needs.  Last, the dense lists of the two-step search (projection, then
the shortlist compared exactly) are compared with the exact product over all
vectors: the share of the exact top 100 it finds.

    python benchmarks/similar_bench.py --cases 100000                 # SQLite
    python benchmarks/similar_bench.py --cases 100000 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

``--keep-schema NAME`` builds into the PostgreSQL schema NAME (SQLite: /tmp/NAME.db) and keeps it;
a later run with the same name skips steps 1-3 and only queries (to profile, or to repeat the
timings).  Drop it yourself when done (``DROP SCHEMA NAME CASCADE`` / delete the file).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, insert, select, text

from backline.cases.hub import Hub
from backline.cases.model import Role
from backline.knowledge.similar.dense import to_blob
from backline.knowledge.similar.embed import DIM, MODEL_NAME, shared_embedder
from backline.knowledge.similar.importer import CaseImporter, parse_record
from backline.knowledge.similar.index import doc_vectors
from backline.knowledge.similar.text import CaseDoc, build_doc
from backline.storage import tables as T
from backline.testing import corpus_dir


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def synth(rows: list[dict], n: int, rng: random.Random) -> list[tuple[dict, tuple[int, int, int]]]:
    sentences = [re.split(r"(?<=[.!?])\s+", r.get("description") or "") for r in rows]
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    out = []
    for i in range(n):
        a, b, c = rng.randrange(len(rows)), rng.randrange(len(rows)), rng.randrange(len(rows))
        desc = " ".join(sentences[a][:3] + sentences[b][:2] + sentences[c][:1])[:4000]
        created = start + timedelta(minutes=rng.randrange(5 * 365 * 24 * 60))
        out.append(({"id": f"syn-{i}", "project": rows[a]["project"], "title": rows[a]["title"],
                     "description": desc, "status": rows[b]["status"], "created": created.isoformat()}, (a, b, c)))
    return out


CPU: dict[int, list[float]] = {}


def timed(fn, n: int) -> list[float]:
    """Wall-clock seconds of ``fn(0..n-1)``, sorted; their CPU seconds (the process's) go to ``CPU``."""
    out, cpu = [], []
    for i in range(n):
        t, c = time.perf_counter(), time.process_time()
        fn(i)
        out.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    out.sort()
    CPU[id(out)] = sorted(cpu)
    return out


def pct(ts: list[float], p: float) -> float:
    return ts[min(len(ts) - 1, int(len(ts) * p))] * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--database-url", help="PostgreSQL URL (a schema is made and dropped)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--sample", type=int, default=300, help="real texts embedded to measure throughput")
    ap.add_argument("--text-from", choices=("all", "sample"), default="all",
                    help="reports the synthetic texts are made of (see above)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--lexical", choices=("memory", "database"), default="memory",
                    help="the lexical half from the process's in-memory index (the default) or from the "
                         "database's full-text index (the path before it; the same lists)")
    ap.add_argument("--keep-schema", metavar="NAME",
                    help="build the data in this PostgreSQL schema (SQLite: the file /tmp/NAME.db) and keep it; "
                         "a later run with the same name skips the build and only queries (drop it yourself)")
    args = ap.parse_args(argv)
    rng = random.Random(7)
    rows = [json.loads(line) for line in (corpus_dir() / "cases" / "gitbugs_cases.jsonl").open()]
    tmp = Path(tempfile.mkdtemp(prefix="similar-bench-"))
    os.environ.setdefault("BACKLINE_HOME", str(tmp))
    schema = None
    reuse = False
    if args.database_url:
        schema = args.keep_schema or f"bl_bench_{os.getpid()}"
        with create_engine(args.database_url, isolation_level="AUTOCOMMIT").connect() as c:
            reuse = bool(args.keep_schema) and c.execute(
                text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f'"{schema}".cases'}).scalar()
            if not reuse:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{args.database_url}{'&' if '?' in args.database_url else '?'}options=-csearch_path%3D{schema}"
    elif args.keep_schema:
        db = Path(tempfile.gettempdir()) / f"{args.keep_schema}.db"
        reuse = db.exists()
        url = f"sqlite:///{db}"
    else:
        url = f"sqlite:///{tmp / 'bench.db'}"
    res: dict[str, object] = {"cases": args.cases, "backend": "postgresql" if schema else "sqlite"}
    hub = Hub.open(url, blob_root=tmp / "blobs")
    try:
        if reuse:
            user = hub.users.get("bench")
            sample = rng.sample(range(len(rows)), min(args.sample, len(rows)))
            records = batch = ids = None
            print(f"reusing schema {schema}")
        else:
            user, _ = hub.users.add("bench", Role.ENGINEER)
            # 1. embedding throughput on real texts; their vectors are the bases of the synthetic ones
            emb = shared_embedder()
            sample = rng.sample(range(len(rows)), min(args.sample, len(rows)))
            docs = [CaseDoc(rows[i]["title"] or "", rows[i].get("description") or "") for i in sample]
            t = time.perf_counter()
            vecs = doc_vectors(emb, docs)
            dt = time.perf_counter() - t
            per_s = len(docs) / dt
            res["embed_cases_per_s"] = per_s
            print(f"embedding: {len(docs)} real cases (full text + title) in {dt:.1f} s = {per_s:.1f} cases/s; "
                  f"{args.cases:,} cases would take {args.cases / per_s / 60:.0f} min   peak {peak_mb():.0f} MB")
            base = {i: v for i, v in zip(sample, vecs)}
            # 2. import (cases + lexical index + term statistics)
            sources = rows if args.text_from == "all" else [rows[i] for i in sample]
            records = synth(sources, args.cases, rng)
            src = tmp / "synthetic.jsonl"
            with src.open("w") as fh:
                for rec, _src in records:
                    fh.write(json.dumps(rec) + "\n")
            t = time.perf_counter()
            report = CaseImporter(hub.cases, hub.similar.indexer).run(user, src, embed=False)
            imp = time.perf_counter() - t
            res["import_s"] = imp
            print(f"import: {report.added:,} cases (no embeddings) in {imp:.1f} s = {report.added / imp:.0f} cases/s"
                  f"; with embeddings at the measured rate: {(imp + args.cases / per_s) / 60:.0f} min   "
                  f"peak {peak_mb():.0f} MB")
            # 3. vectors of the synthetic cases: mixes of their source reports' real vectors
            with hub.engine.begin() as conn:
                conn.execute(T.similar_queue.delete())
                ids = dict(conn.execute(select(T.case_external.c.external_id, T.case_external.c.case_id)).all())
                batch = []
                now = datetime.now(timezone.utc)
                for rec, (a, b, c) in records:
                    values = parse_record(rec, org="imported", product="imported", now=now).values
                    content = build_doc(values["title"], values["intake"], (), ()).content_hash()
                    src_ids = [sample[x % len(sample)] for x in (a, b, c)]
                    for kind in ("full", "title"):
                        if kind == "title":
                            v = base[src_ids[0]]["title"] + np.float32(0.05) * rng_normal(rng)
                        else:
                            v = (0.6 * base[src_ids[0]]["full"] + 0.3 * base[src_ids[1]]["full"]
                                 + 0.1 * base[src_ids[2]]["full"] + np.float32(0.05) * rng_normal(rng))
                        v = v / np.linalg.norm(v)
                        batch.append({"case_id": ids[rec["id"]], "kind": kind, "model": MODEL_NAME, "dim": DIM,
                                      "vector": to_blob(v), "content_hash": content})
                    if len(batch) >= 5000:
                        conn.execute(insert(T.case_vectors), batch)
                        batch = []
                if batch:
                    conn.execute(insert(T.case_vectors), batch)
            if schema:
                with hub.engine.connect() as conn:
                    # the bench's own tables only (a bare ANALYZE takes every schema of the database and
                    # waits behind whatever holds a lock there)
                    for table in ("cases", "case_search", "case_fts", "case_vectors", "search_terms",
                                  "case_external", "case_signatures", "users"):
                        conn.execute(text(f'ANALYZE "{schema}"."{table}"'))
                    conn.commit()
        with hub.engine.connect() as conn:
            keys = [r for (r,) in conn.execute(select(T.cases.c.key))]
        qkeys = [rng.choice(keys) for _ in range(args.queries)]
        res["bench_peak_rss_mb"] = peak_mb()
        del records, batch, ids
        gc.collect()
        reset_peak()
        print(f"(the bench's own peak so far {res['bench_peak_rss_mb']:.0f} MB; reset, now {peak_mb():.0f} MB)")
        if not hasattr(hub.similar, "lexindex"):
            args.lexical = "database (code from before the in-memory index)"
        elif args.lexical == "database":
            hub.similar.lexindex = None
        t = time.perf_counter()
        hub.similar.for_case(user, qkeys[0])            # loads the vector cache (and the lexical index)
        load = time.perf_counter() - t
        lex = getattr(hub.similar, "lexindex", None)          # (None also for code from before it)
        lex = lex.stats() if lex is not None else None
        print(f"first query (loads {hub.similar.cache.stats()['live']:,} vectors"
              + (f", builds the lexical index: {lex['postings']:,} postings, {lex['bytes'] / 2**20:.0f} MB" if lex else "")
              + f"): {load:.1f} s   peak {peak_mb():.0f} MB   lexical: {args.lexical}   load average "
              f"{os.getloadavg()[0]:.1f}")
        base_t = timed(lambda i: hub.cases.get(user, qkeys[i]), args.queries)
        case_t = timed(lambda i: hub.similar.for_case(user, qkeys[i], limit=10), args.queries)
        texts = [f"{rows[i]['title']}. {(rows[i].get('description') or '')[:300]}" for i in sample[:50]]
        text_t = timed(lambda i: hub.similar.for_text(user, texts[i % len(texts)], limit=10), min(50, args.queries))
        b50, b95 = pct(base_t, .5), pct(base_t, .95)
        for name, ts in (("case read (baseline)", base_t), ("similar to a case", case_t),
                         ("similar to a text (with embedding)", text_t)):
            m, p = pct(ts, .5), pct(ts, .95)
            cm, cp = pct(CPU[id(ts)], .5), pct(CPU[id(ts)], .95)
            res[name] = {"median_ms": m, "p95_ms": p, "n": len(ts), "cpu_median_ms": cm, "cpu_p95_ms": cp}
            print(f"{name:38s} n={len(ts):4d} median {m:7.1f} ms  p95 {p:7.1f} ms   x{p / b95:.0f} of baseline p95"
                  f"   CPU median {cm:.1f} / p95 {cp:.1f} ms   load average {os.getloadavg()[0]:.1f}")
        res["peak_rss_mb"] = peak_mb()
        print(f"service peak RSS {peak_mb():.0f} MB (loading {args.cases:,} cases' vectors and the queries, "
              f"{res['backend']})")
        res["projection_recall@100"] = projection_recall(hub, user, qkeys[:30])
        print(f"two-step dense search vs the exact product: {res['projection_recall@100']:.3f} of the exact top 100 "
              f"found (30 queries)")
        if args.json:
            args.json.write_text(json.dumps(res, indent=2))
        return 0
    finally:
        hub.engine.dispose()
        if schema and not args.keep_schema:
            with create_engine(args.database_url, isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def projection_recall(hub, user, keys: list[str]) -> float:
    """The share of the exact dense top 100 (the product with every vector) the cache's search returns."""
    from backline.knowledge.similar.dense import Filter
    cache = hub.similar.cache
    if cache.basis is None:
        return 1.0
    found = []
    with hub.engine.connect() as conn:
        for key in keys:
            row = hub.similar.resolve(conn, user, key)
            q = cache.vectors_of(row["id"])["full"]
            flt = Filter(product=cache.code("product", row["product"]), exclude_case=row["id"])
            got = {c for c, _ in cache.search([([q], ["full"])], flt, 100)[0]}
            n = cache.n
            ok = cache._mask(flt) & (cache.kind[:n] == 0)
            scores = np.where(ok, cache.vecs[:n].astype(np.float32) @ q, -np.inf)
            top = np.argsort(-scores)[:100]
            exact = {int(cache.case[j]) for j in top}
            found.append(len(got & exact) / len(exact))
    return float(np.mean(found))


def rng_normal(rng: random.Random) -> np.ndarray:
    return np.random.default_rng(rng.randrange(2 ** 32)).standard_normal(DIM).astype(np.float32) / np.sqrt(DIM)


if __name__ == "__main__":
    sys.exit(main())
