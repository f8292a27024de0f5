"""Similar-case retrieval on the corpus's gitbugs duplicates: Recall@10 and MRR.

Every report of a duplicate group is a query (``backline similar <id>`` through
:class:`~backline.knowledge.similar.service.SimilarService`, as an engineer);
a hit is another member of its group in the top 10.  Candidates are the other
cases of the same project (the service's default: the query case's product).
MRR counts the first group member in the top 100 (MRR@100).

The cases are imported with ``backline case import`` into a fresh database
(SQLite by default, ``--database-url`` for PostgreSQL) and embedded once
(``--db FILE`` keeps the SQLite file so later runs skip that).  Then, in the
same run:

* the three configurations on all queries: BM25 only (the lexical index),
  MiniLM only (dense, full text) and the fused default (``DEFAULT_WEIGHTS``);
* the honest split: duplicate groups dealt into halves A and B by sha1 of the
  group's smallest id; a grid of weights / k / query terms is scored on A only,
  and the configuration it picks is then scored on B (never used for tuning)
  and on all queries, through the whole service.  ``DEFAULT_WEIGHTS`` is the
  configuration chosen on A: the run says whether it still is.  (The grid fuses
  lists gathered once per query.)

    python benchmarks/similar_eval.py                 # SQLite in a temporary folder
    python benchmarks/similar_eval.py --db /tmp/sim.db
    python benchmarks/similar_eval.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from backline.cases.hub import Hub
from backline.cases.model import Role
from backline.knowledge.similar.fusion import DEFAULT_WEIGHTS, FusionWeights
from backline.knowledge.similar.importer import CaseImporter
from backline.testing import corpus_dir

BM25_ONLY = FusionWeights(lexical=1, dense=0, title=0, time=0, signature=0)
MINILM_ONLY = FusionWeights(lexical=0, dense=1, title=0, time=0, signature=0)


def load_groups(cases_dir: Path) -> dict[str, set[str]]:
    """External id -> its duplicate group (from the pairs file, joined by union-find)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    with (cases_dir / "gitbugs_duplicates.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            a, b = find(row["case_id"]), find(row["duplicate_of_case_id"])
            if a != b:
                parent[a] = b
    groups: dict[str, set[str]] = defaultdict(set)
    for x in list(parent):
        groups[find(x)].add(x)
    return {x: groups[find(x)] for x in parent}


def split_halves(groups: dict[str, set[str]]) -> tuple[list[str], list[str]]:
    """Queries of half A and half B: whole groups, dealt alternately in sha1 order of their smallest id."""
    reps = sorted({min(g) for g in groups.values()}, key=lambda r: hashlib.sha1(r.encode()).hexdigest())
    a, b = [], []
    for i, rep in enumerate(reps):
        (a if i % 2 == 0 else b).extend(sorted(groups[rep]))
    return a, b


def evaluate(hub: Hub, user, queries: list[str], groups: dict[str, set[str]], weights: FusionWeights,
             timings: list[float] | None = None) -> dict[str, float]:
    """The metrics of ``weights`` through the whole service (``for_case``), timing each query."""
    ranks = []
    for q in queries:
        t = time.perf_counter()
        hits = hub.similar.for_case(user, q, limit=100, weights=weights)
        if timings is not None:
            timings.append(time.perf_counter() - t)
        ids = [h.external_id for h in hits]
        assert q not in ids, f"{q} found itself"
        ranks.append(next((i for i, e in enumerate(ids, start=1) if e in groups[q] and e != q), None))
    return metrics(ranks)


def metrics(ranks: list[int | None]) -> dict[str, float]:
    n = max(len(ranks), 1)
    return {"n": len(ranks), "R@1": sum(1 for r in ranks if r == 1) / n,
            "R@10": sum(1 for r in ranks if r and r <= 10) / n,
            "MRR": sum(1.0 / r for r in ranks if r and r <= 100) / n}


class Lists:
    """The unfused lists of every query, gathered once per number of lexical terms."""

    def __init__(self, hub: Hub, user, queries: list[str]):
        from sqlalchemy import select
        from backline.storage import tables as T
        with hub.engine.connect() as conn:
            self.ext = dict(conn.execute(select(T.case_external.c.case_id, T.case_external.c.external_id)).all())
        self.hub, self.user, self.queries = hub, user, queries
        self.cache: dict[tuple[str, int], object] = {}

    def get(self, q: str, terms: int):
        key = (q, terms)
        if key not in self.cache:
            gather = replace(DEFAULT_WEIGHTS, lexical=1, dense=1, title=1, time=1, lexical_terms=terms)
            self.cache[key] = self.hub.similar.candidates(self.user, q, weights=gather)
        return self.cache[key]

    def score(self, queries: list[str], groups: dict[str, set[str]], w: FusionWeights) -> dict[str, float]:
        ranks = []
        for q in queries:
            fused = [self.ext.get(c) for c, _s, _r in self.get(q, w.lexical_terms).fuse(w)]
            assert q not in fused, f"{q} found itself"
            ranks.append(next((i for i, e in enumerate(fused, start=1) if e in groups[q]), None))
        return metrics(ranks)


def grid() -> list[FusionWeights]:
    out = []
    for lex, title, tm, k, terms in itertools.product((0.5, 1.0, 1.5), (0.0, 0.5, 1.0), (0.0, 0.3, 0.6, 1.0, 1.5, 2.0),
                                                        (2.0, 5.0, 10.0, 20.0, 60.0), (12, 16, 24)):
        out.append(replace(DEFAULT_WEIGHTS, lexical=lex, dense=1.0, title=title, time=tm, k=k, lexical_terms=terms))
    return out


def tune(lists: Lists, queries, groups) -> tuple[FusionWeights, dict[str, float]]:
    best = None
    for w in grid():
        m = lists.score(queries, groups, w)
        key = (m["R@10"] + m["MRR"], m["MRR"])
        if best is None or key > best[0]:
            best = (key, w, m)
    return best[1], best[2]


def fmt(name: str, m: dict[str, float]) -> str:
    return f"{name:44s} n={m['n']:3d}  R@1 {m['R@1']:.3f}  R@10 {m['R@10']:.3f}  MRR {m['MRR']:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", type=Path, help="SQLite file to build once and reuse")
    ap.add_argument("--database-url", help="PostgreSQL URL (a schema is made and dropped)")
    ap.add_argument("--no-tune", action="store_true", help="skip the split tuning (baselines + default only)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    cases = corpus_dir() / "cases"
    groups = load_groups(cases)
    tmp = Path(tempfile.mkdtemp(prefix="similar-eval-"))
    os.environ.setdefault("BACKLINE_HOME", str(tmp))
    schema = None
    if args.database_url:
        from sqlalchemy import create_engine, text
        schema = f"bl_eval_{os.getpid()}"
        admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.database_url else "?"
        url = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{args.db or tmp / 'eval.db'}"
    try:
        hub = Hub.open(url, blob_root=tmp / "blobs")
        try:
            user = hub.users.get("eval")
        except Exception:  # noqa: BLE001 - first run on this database
            user, _ = hub.users.add("eval", Role.ENGINEER)
        t0 = time.perf_counter()
        report = CaseImporter(hub.cases, hub.similar.indexer).run(user, cases / "gitbugs_cases.jsonl")
        print(f"import: {report.added} added, {report.unchanged} unchanged, {report.indexed} indexed "
              f"in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        if hub.similar.indexer.embed_error:
            print(f"no embeddings: {hub.similar.indexer.embed_error}", file=sys.stderr)
            return 2
        queries = sorted(groups)
        results: dict[str, dict] = {}
        timings: list[float] = []
        for name, w in (("BM25 only (lexical index)", BM25_ONLY), ("MiniLM only (dense, full text)", MINILM_ONLY),
                        ("fused (DEFAULT_WEIGHTS)", DEFAULT_WEIGHTS)):
            results[name] = evaluate(hub, user, queries, groups, w, timings if w is DEFAULT_WEIGHTS else None)
            print(fmt(name, results[name]))
        timings.sort()
        print(f"query time (fused, {len(timings)} queries, {hub.engine.dialect.name}): "
              f"median {timings[len(timings) // 2] * 1000:.1f} ms, p95 {timings[int(len(timings) * 0.95)] * 1000:.1f} ms")
        if not args.no_tune:
            half_a, half_b = split_halves(groups)
            lists = Lists(hub, user, half_a)
            w, m_in = tune(lists, half_a, groups)
            m_out = evaluate(hub, user, half_b, groups, w)
            m_all = evaluate(hub, user, queries, groups, w)
            results["tuned on A"] = {"weights": w.to_json(), "half A (tuned on)": m_in, "half B (held out)": m_out,
                                     "all": m_all, "is DEFAULT_WEIGHTS": w == DEFAULT_WEIGHTS}
            print(f"tuned on half A ({len(half_a)} queries, {len(grid())} configurations): lexical={w.lexical} "
                  f"title={w.title} time={w.time} k={w.k} terms={w.lexical_terms}"
                  f" ({'= DEFAULT_WEIGHTS' if w == DEFAULT_WEIGHTS else 'NOT DEFAULT_WEIGHTS'})")
            print(fmt("  half A (tuned on)", m_in))
            print(fmt("  half B (held out, not seen by the tuning)", m_out))
            print(fmt("  all queries", m_all))
            for half, name in ((half_a, "A"), (half_b, "B")):
                print(fmt(f"DEFAULT_WEIGHTS on half {name}", evaluate(hub, user, half, groups, DEFAULT_WEIGHTS)))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0
    finally:
        if schema:
            from sqlalchemy import create_engine, text
            hub.engine.dispose()
            with create_engine(args.database_url, isolation_level="AUTOCOMMIT").connect() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


if __name__ == "__main__":
    sys.exit(main())
