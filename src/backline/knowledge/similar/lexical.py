"""The lexical half: ranked case ids for a handful of query terms, in the database.

SQLite: an FTS5 table over ``case_search`` (kept in step by triggers) ranked by
FTS5's ``bm25()`` with a weight per column.  PostgreSQL: ``tsvector`` columns
with GIN indexes, ranked by ``ts_rank`` (title terms weigh A, public text B).
PostgreSQL has no document frequencies in its ranking, so each query term's
rank is weighted by its idf from ``search_terms``; with the few, rare terms
:func:`~backline.knowledge.similar.text.pick_terms` chooses this is BM25's idea.
Each term is ranked only over the cases that hold it (see :func:`_search_pg`).

Internal notes are a column of their own: they are searched only for staff.
The visibility rule of :mod:`backline.cases.access` and the product filter
are part of the same statement, so a customer's query never ranks another
organisation's cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from sqlalchemy import Connection, column, func, literal_column, select, table, text, union_all
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


def _search_pg(conn, words, idf, *, where, staff, limit, weights) -> list[tuple[int, float]]:
    """One ``ts_rank`` per (term, case holding it): each term's cases come from the GIN index in a
    branch of its own, ranked there, and the branches are summed per case.

    The score is the same as ranking every case that holds any term by every term (a term a case
    does not hold ranks 0), but ``ts_rank`` reads (and decompresses) the case's ``tsvector`` on
    each call: that way a query with 12 terms and 5,000 matching cases made 60,000 reads; this
    way it makes one per posting (at most ``lexical_postings``)."""
    f = _FTS_PG.c
    label_weights = literal_column(f"'{{0.1, 0.2, {weights.body / max(weights.title, 1e-6):.6g}, 1.0}}'::float4[]")
    branches = []
    for w in words:
        one = func.to_tsquery("simple", w)
        branches.append(select(f.case_id.label("case_id"),
                               (func.ts_rank(label_weights, f.tsv, one, 1) * idf.get(w, 1.0)).label("s"))
                        .where(f.tsv.op("@@")(one)))
        if staff:
            branches.append(select(f.case_id.label("case_id"),
                                   (func.ts_rank(f.tsv_internal, one, 1) * (idf.get(w, 1.0) * weights.internal))
                                   .label("s"))
                            .where(f.tsv_internal.op("@@")(one)))
    postings = union_all(*branches).subquery("postings")
    score = func.sum(postings.c.s).label("score")
    q = (select(T.cases.c.id, score)
         .select_from(postings.join(T.cases, T.cases.c.id == postings.c.case_id))
         .where(where).group_by(T.cases.c.id).order_by(score.desc(), T.cases.c.id).limit(limit))
    return [(int(cid), float(s)) for cid, s in conn.execute(q)]
