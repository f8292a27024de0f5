"""The lexical half: ranked case ids for a handful of query terms, in the database.

SQLite: an FTS5 table over ``case_search`` (kept in step by triggers) ranked by
FTS5's ``bm25()`` with a weight per column.  PostgreSQL: ``tsvector`` columns
with GIN indexes, ranked by ``ts_rank`` (title terms weigh A, public text B).
PostgreSQL has no document frequencies in its ranking, so each query term's
rank is weighted by its idf from ``search_terms``; with the few, rare terms
:func:`~backline.knowledge.similar.text.pick_terms` chooses this is BM25's idea.
Only a shortlist of the cases holding the terms is ranked that way (see :func:`_search_pg`).

Internal notes are a column of their own: they are searched only for staff.
The visibility rule of :mod:`backline.cases.access` and the product filter
are part of the same statement, so a customer's query never ranks another
organisation's cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from sqlalchemy import Connection, Float, column, func, literal, literal_column, or_, select, table, text, union_all
from sqlalchemy.sql.elements import ColumnElement

from backline.storage import tables as T

_FTS_SQLITE = table("case_fts", column("rowid"))
_FTS_PG = table("case_fts", column("case_id"), column("tsv"), column("tsv_internal"))


@dataclass(frozen=True, slots=True)
class LexicalWeights:
    title: float = 2.0
    body: float = 1.0
    internal: float = 1.0


def search(conn: Connection, query_terms: Sequence[str], idf: Mapping[str, float], *,
           where: ColumnElement[bool], staff: bool, limit: int,
           weights: LexicalWeights = LexicalWeights()) -> list[tuple[int, float]]:
    """``(case_id, score)`` best first; higher is better on both backends."""
    words = [t for t in query_terms if t and t.replace("_", "a").isalnum()]
    if not words:
        return []
    if conn.dialect.name == "postgresql":
        return _search_pg(conn, words, idf, where=where, staff=staff, limit=limit, weights=weights)
    return _search_sqlite(conn, words, where=where, staff=staff, limit=limit, weights=weights)


def _search_sqlite(conn, words, *, where, staff, limit, weights) -> list[tuple[int, float]]:
    match = " OR ".join(f'"{w}"' for w in words)
    if not staff:
        match = "{title_terms body_terms} : (" + match + ")"
    rank = literal_column(f"bm25(case_fts, {weights.title:.6g}, {weights.body:.6g}, "
                          f"{weights.internal if staff else 0.0:.6g})")
    q = (select(T.cases.c.id, rank.label("rank"))
         .select_from(_FTS_SQLITE.join(T.cases, T.cases.c.id == _FTS_SQLITE.c.rowid))
         .where(text("case_fts MATCH :match").bindparams(match=match), where)
         .order_by(literal_column("rank")).limit(limit))
    return [(int(cid), -float(r)) for cid, r in conn.execute(q)]


#: PostgreSQL: cases ranked exactly (``ts_rank``), taken from the best by summed idf of the terms they hold.
PG_SHORTLIST = 300


def _search_pg(conn, words, idf, *, where, staff, limit, weights,
               shortlist: int | None = None) -> list[tuple[int, float]]:
    """In two steps, so that only a few hundred ``tsvector`` values are read.

    1. every case holding a term, straight from the GIN indexes (the ``tsvector`` is not read:
       a plain term needs no recheck), scored by the summed idf of the terms it holds, and the
       ``shortlist`` best that pass ``where`` kept;
    2. those ranked by the full formula: for each term its ``ts_rank`` (title A, body B) times its
       idf, plus, for staff, the same over the internal notes.

    Ranking every matching case by the formula (as this did before) read each case's ``tsvector``
    once per term and call: 100-300 ms for a query with 5,000 postings over 100,000 cases; the
    shortlist's top 100 is measured against that exact ranking in ``benchmarks/similar_bench.py``.
    """
    shortlist = shortlist or max(PG_SHORTLIST, 3 * limit)
    f = _FTS_PG.c
    branches = []
    for w in words:
        one = func.to_tsquery("simple", w)
        holds = f.tsv.op("@@")(one)
        if staff:
            holds = or_(holds, f.tsv_internal.op("@@")(one))
        branches.append(select(f.case_id.label("case_id"), literal(float(idf.get(w, 1.0)), Float).label("s"))
                        .where(holds))
    postings = union_all(*branches).subquery("postings")
    # summed per case before the case rows are read for ``where`` (each case once, not once a term)
    held = (select(postings.c.case_id.label("case_id"), func.sum(postings.c.s).label("pre"))
            .group_by(postings.c.case_id).subquery("held"))
    cand = (select(held.c.case_id.label("case_id"))
            .select_from(held.join(T.cases, T.cases.c.id == held.c.case_id))
            .where(where).order_by(held.c.pre.desc(), held.c.case_id).limit(shortlist).subquery("cand"))
    fts = _FTS_PG.alias("f")
    label_weights = literal_column(f"'{{0.1, 0.2, {weights.body / max(weights.title, 1e-6):.6g}, 1.0}}'::float4[]")
    parts = []
    for w in words:
        one = func.to_tsquery("simple", w)
        parts.append(func.ts_rank(label_weights, fts.c.tsv, one, 1) * idf.get(w, 1.0))
        if staff:
            parts.append(func.ts_rank(fts.c.tsv_internal, one, 1) * (idf.get(w, 1.0) * weights.internal))
    score = parts[0]
    for p in parts[1:]:
        score = score + p
    score = score.label("score")
    q = (select(cand.c.case_id, score).select_from(cand.join(fts, fts.c.case_id == cand.c.case_id))
         .order_by(literal_column("score").desc(), cand.c.case_id).limit(limit))
    return [(int(cid), float(s)) for cid, s in conn.execute(q)]
