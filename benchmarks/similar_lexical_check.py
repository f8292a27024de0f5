"""The lexical half two ways on a kept 100,000-case bench database: the database's full-text
statement and the in-memory index (``lexindex.py``), for the same queries (as ``for_case`` picks
their terms), staff and not: are the lists identical (ids, order, scores), and the CPU time of each.

    python benchmarks/similar_lexical_check.py sqlite:////tmp/p95sq.db 100
    python benchmarks/similar_lexical_check.py "postgresql+psycopg://postgres@127.0.0.1:5432/p95bench?options=-csearch_path%3Dp95pg" 100

(On PostgreSQL the database's path ranks a 300-case shortlist in another order of operations: lists
may differ there by design; on SQLite they must not.)  Build the data first with
``similar_bench.py --keep-schema``.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from backline.cases.hub import Hub
from backline.knowledge.similar import lexical
from backline.knowledge.similar.index import DOC_COUNT_TERM, REV_TERM
from backline.knowledge.similar.service import _DF
from backline.knowledge.similar.text import idf, pick_terms, terms
from backline.storage import tables as T


def main(url: str, n: int) -> int:
    os.environ.setdefault("BACKLINE_HOME", tempfile.mkdtemp())
    hub = Hub.open(url, blob_root=Path(tempfile.mkdtemp()) / "blobs")
    user = hub.users.get("bench")
    svc, w = hub.similar, hub.similar.weights
    with hub.engine.connect() as conn:
        keys = [r for (r,) in conn.execute(select(T.cases.c.key))]
        t = time.perf_counter()
        svc.lexindex.refresh(conn, None)
    print(f"built in {time.perf_counter() - t:.1f} s: {svc.lexindex.stats()}")
    rng = random.Random(11)
    same, same_ids, cpu_db, cpu_mem = 0, [], [], []
    for key in (rng.choice(keys) for _ in range(n)):
        q = svc._case_query(user, key, any_product=False)
        with hub.cases.reader.connect() as conn:
            where, _flt = svc._filters(user, q)
            qterms = terms(q.doc.title) + terms(q.doc.public) + terms(q.doc.internal)
            df = dict(conn.execute(_DF, {"terms": list(dict.fromkeys(qterms))[:5000] + [DOC_COUNT_TERM, REV_TERM]}).all())
            n_docs, rev = int(df.pop(DOC_COUNT_TERM, 0)), int(df.pop(REV_TERM, 0))
            picked = pick_terms(qterms, df, n_docs=n_docs, limit=w.lexical_terms, max_postings=w.lexical_postings)
            idfs = {x: idf(df.get(x, 0), max(n_docs, 1)) for x in picked}
            for staff in (True, False):
                c0 = time.thread_time()
                a = lexical.search(conn, picked, idfs, where=where, staff=staff, limit=w.depth)
                c1 = time.thread_time()
                b = lexical.search(conn, picked, idfs, where=where, staff=staff, limit=w.depth,
                                   index=svc.lexindex, rev=rev)
                cpu_db.append(c1 - c0)
                cpu_mem.append(time.thread_time() - c1)
                same += a == b
                same_ids.append([c for c, _ in a] == [c for c, _ in b])
    cpu_db.sort()
    cpu_mem.sort()
    m = len(cpu_db)
    print(f"identical lists: {same}/{m} (the same ids in the same order: {sum(same_ids)}); CPU ms, database: p50 {cpu_db[m // 2] * 1e3:.1f} p95 "
          f"{cpu_db[int(m * .95)] * 1e3:.1f}; memory: p50 {cpu_mem[m // 2] * 1e3:.1f} p95 "
          f"{cpu_mem[int(m * .95)] * 1e3:.1f}; load average {os.getloadavg()[0]:.1f}")
    return 0 if same == m or hub.engine.dialect.name != "sqlite" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100))
