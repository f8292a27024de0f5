"""The lexical half: ranked case ids for a handful of query terms, in the database.

SQLite: an FTS5 table over ``case_search`` (kept in step by triggers) ranked by
FTS5's ``bm25()`` with a weight per column.  PostgreSQL: ``tsvector`` columns
with GIN indexes find the cases holding the terms, and a shortlist of them is
ranked by the same BM25 (:func:`bm25`, FTS5's formula, constants and column
weights), computed here from the stored terms (see :func:`_search_pg`), so one
configuration serves both backends.

Internal notes are a column of their own: they are searched only for staff.
The visibility rule of :mod:`backline.cases.access` and the product filter
are part of the same statement, so a customer's query never ranks another
organisation's cases.
"""

from __future__ import annotations

import math
from contextlib import contextmanager, suppress
from functools import lru_cache
from collections import Counter
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

from sqlalchemy import JSON, BigInteger, Column, Connection, Float, Integer, String, bindparam, column, func, literal, literal_column, or_, select, table, text, union_all
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnElement

from backline.errors import SearchError
from backline.knowledge.similar.index import DOC_COUNT_TERM
from backline.knowledge.similar.lexindex import LexicalIndex
from backline.knowledge.similar.text import TOKEN_COUNT_TERM, fts_tokens
from backline.storage import tables as T

_FTS_SQLITE = table("case_fts", column("rowid"))
#: PostgreSQL: the case facts the filter reads are copied into ``case_fts`` (revision 0011), so a
#: posting is filtered without reading its ``cases`` row.
FILTER_FACTS = ("product", "org", "team", "created_by")
_FTS_PG = table("case_fts", column("case_id"), column("tsv"), column("tsv_internal"),
                *(column(f) for f in FILTER_FACTS))


@dataclass(frozen=True, slots=True)
class LexicalWeights:
    title: float = 2.0
    body: float = 1.0
    internal: float = 1.0


def search(conn: Connection, query_terms: Sequence[str], idf: Mapping[str, float], *,
           where: ColumnElement[bool], staff: bool, limit: int,
           weights: LexicalWeights = LexicalWeights(), index: LexicalIndex | None = None,
           rev: int | None = None) -> list[tuple[int, float]]:
    """``(case_id, score)`` best first; higher is better on both backends.

    With ``index`` (the process's in-memory copy, brought up to revision ``rev`` first), every
    matching case is ranked by FTS5's ``bm25()`` in memory and only the filter is asked of the
    database (:func:`_search_index`); the same list as SQLite's FTS5 statement, on both backends.
    """
    words = [t for t in query_terms if t and t.replace("_", "a").isalnum()]
    if not words:
        return []
    if index is not None:
        index.refresh(conn, rev)
        got = _search_index(conn, index, words, where=where, staff=staff, limit=limit, weights=weights)
        if got is not None:
            return got
    if conn.dialect.name == "postgresql":
        return _search_pg(conn, words, idf, where=where, staff=staff, limit=limit, weights=weights)
    return _search_sqlite(conn, words, where=where, staff=staff, limit=limit, weights=weights)


#: The filter is asked of the ``FILTER_FIRST`` x ``limit`` best-ranked cases first, then of as many
#: more as the share that passed says are needed (x 1.5), until ``limit`` pass or none are left.
FILTER_FIRST = 3


def _search_index(conn, index: LexicalIndex, words, *, where, staff, limit, weights) -> list[tuple[int, float]] | None:
    ranked = index.rank(words, staff=staff, title=weights.title, body=weights.body, internal=weights.internal)
    if ranked is None:
        return None
    cases, scores = ranked
    out: list[tuple[int, float]] = []
    start, size = 0, FILTER_FIRST * limit
    stmt = _filter_statement(conn.dialect.name, where)
    while start < cases.size and len(out) < limit:
        part = cases[start:start + size]
        # the first of ``part`` (in rank order) that pass the filter, as positions in ``part``
        pos = [int(p) for (p,) in conn.execute(stmt, {"ids": part.tolist(), "n": limit - len(out)})]
        out.extend((int(part[p]), float(scores[start + p])) for p in pos)
        start += part.size
        rate = max(len(out) / start, 0.01)
        size = max(limit, int(1.5 * (limit - len(out)) / rate))
    return out


def _filter_statement(dialect: str, where: ColumnElement[bool]):
    """The positions (0-based, in order) of the first ``:n`` cases of ``:ids`` that pass ``where``:
    the ids are one bound value (a JSON array on SQLite, an array on PostgreSQL), not a placeholder
    each, and only the passing positions come back."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY
        u = (func.unnest(bindparam("ids", type_=ARRAY(BigInteger()))).table_valued("id", with_ordinality="ord")
             .render_derived(name="u"))
        pos = u.c.ord - 1
    else:
        u = func.json_each(bindparam("ids", type_=JSON())).table_valued("key", "value").alias("u")
        pos = u.c.key
    u_id = u.c.id if dialect == "postgresql" else u.c.value
    # SQLite: through the small covering index of the filter's columns (revision 0012), not the
    # table's rows (a page of ``cases`` read per case: 1.8 instead of 4.6 ms CPU for 1,000 cases)
    return (select(pos).select_from(u.join(T.cases, T.cases.c.id == u_id)).where(where)
            .with_hint(T.cases, "INDEXED BY ix_cases_filter", "sqlite")
            .order_by(pos).limit(bindparam("n")))


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


#: PostgreSQL: cases ranked by BM25, taken from the best by summed idf of the terms they hold.
PG_SHORTLIST = 300
#: FTS5's ``bm25()`` constants (fixed in SQLite's source, ``fts5_aux.c``).
K1 = 1.2
B = 0.75


def bm25_idf(n_docs: int, n_hit: int) -> float:
    """FTS5's idf: ``log((N - n + 0.5) / (n + 0.5))``, and 1e-6 where that is not positive."""
    v = math.log((n_docs - n_hit + 0.5) / (n_hit + 0.5)) if n_docs > 0 else 0.0
    return v if v > 0.0 else 1e-6


def phrase_count(tokens: Sequence[str], phrase: Sequence[str]) -> int:
    """How many times ``phrase`` (FTS5 tokens) starts in ``tokens``, overlapping ones included."""
    if not phrase:
        return 0
    if len(phrase) == 1:
        return tokens.count(phrase[0])
    n, first = len(phrase), phrase[0]
    return sum(1 for i, t in enumerate(tokens) if t == first and list(tokens[i:i + n]) == list(phrase))


def bm25(freqs: Sequence[float], idfs: Sequence[float], doc_len: int, avgdl: float) -> float:
    """FTS5's ``bm25()`` score (positive: FTS5 returns it negated) of one row: ``freqs`` are the
    column-weighted frequencies of the query's phrases, ``doc_len`` the row's tokens in all columns."""
    norm = K1 * (1.0 - B + B * doc_len / avgdl) if avgdl > 0 else K1
    return sum(i * (f * (K1 + 1.0)) / (f + norm) for f, i in zip(freqs, idfs))


@lru_cache(maxsize=64)
def _postings(n_terms: int, staff: bool):
    """The postings of ``n_terms`` terms (bound as ``w0``.. with their idf as ``s0``..), one GIN
    scan each, with the facts the filter reads.  Built once per shape: building the union of
    12-24 scans took ~3 ms a query."""
    f = _FTS_PG.c
    branches = []
    for i in range(n_terms):
        one = func.to_tsquery("simple", bindparam(f"w{i}", type_=String()))
        holds = f.tsv.op("@@")(one)
        if staff:
            holds = or_(holds, f.tsv_internal.op("@@")(one))
        branches.append(select(f.case_id.label("case_id"), literal(i, Integer).label("t"),
                               bindparam(f"s{i}", type_=Float()).label("s"),
                               *(f[name] for name in FILTER_FACTS)).where(holds))
    return union_all(*branches).cte("postings")   # read twice: PostgreSQL materialises it once


@contextmanager
def _serial(conn: Connection) -> Iterator[None]:
    """No parallel workers for one statement: the planner takes them for the term scans, and
    starting two workers cost more than they saved (measured at 100,000 cases on the 2-core
    machine: 29-31 ms with them, 15-22 ms without, same plan otherwise)."""
    conn.exec_driver_sql("SET max_parallel_workers_per_gather = 0")
    try:
        yield
    except BaseException:
        with suppress(SQLAlchemyError):      # a failed transaction takes the setting back with it
            conn.exec_driver_sql("RESET max_parallel_workers_per_gather")
        raise
    conn.exec_driver_sql("RESET max_parallel_workers_per_gather")


def _on_postings(where: ColumnElement[bool], postings) -> ColumnElement[bool]:
    """``where`` (a condition on ``cases``: visibility, product, not the query case) as a condition
    on the postings' own columns (``cases.id`` is ``case_id``, the facts are copied)."""
    def swap(el):
        if isinstance(el, Column) and el.table is T.cases:
            name = "case_id" if el.name == "id" else el.name
            if name not in postings.c:
                raise SearchError(f"the lexical filter reads cases.{el.name}, which case_fts does not carry")
            return postings.c[name]
        return None
    return visitors.replacement_traverse(where, {}, swap)


def _search_pg(conn, words, idf, *, where, staff, limit, weights,
               shortlist: int | None = None) -> list[tuple[int, float]]:
    """SQLite's ranking (FTS5 ``bm25()`` with the same column weights) over a shortlist.

    1. every case holding a term, straight from the GIN indexes (the ``tsvector`` is not read:
       a plain term needs no recheck), scored by the summed idf of the terms it holds, and the
       ``shortlist`` best that pass ``where`` kept; the same postings counted per term give each
       term's document frequency, as FTS5 counts it (cases holding it in the searched columns, in
       the whole index);
    2. those ranked by FTS5's BM25 here: term frequencies (title x ``weights.title`` + public text
       x ``weights.body`` + for staff internal notes x ``weights.internal``) and the length in
       tokens (all three columns, as FTS5) from their ``case_search`` terms, the average length
       from the ``search_terms`` statistics (number of cases, total tokens).  Same formula, same
       inputs: the scores are SQLite's to the last bits, for the cases in the shortlist.

    The shortlist (300 by default) is what keeps this fast: ranking every matching case read each
    case's text once per term and call (100-300 ms for 5,000 postings over 100,000 cases).  It can
    differ from SQLite, which ranks every match, only where a case outside it (holding fewer or
    commoner terms) would score higher.  A phrase term (``foo_bar``) may also match across the end
    of the title and the start of the text in the GIN step, where FTS5 keeps columns apart; its
    frequency here is FTS5's.
    """
    shortlist = shortlist or max(PG_SHORTLIST, 3 * limit)
    postings = _postings(len(words), staff)
    params = {f"w{i}": w for i, w in enumerate(words)} | {f"s{i}": float(idf.get(w, 1.0))
                                                          for i, w in enumerate(words)}
    # ``where`` on the facts the postings carry (no ``cases`` row read), then summed per case
    held = (select(postings.c.case_id.label("case_id"), func.sum(postings.c.s).label("pre"))
            .where(_on_postings(where, postings)).group_by(postings.c.case_id).subquery("held"))
    cand = (select(held.c.case_id.label("case_id"))
            .order_by(held.c.pre.desc(), held.c.case_id).limit(shortlist).subquery("cand"))
    per_term = select(postings.c.t.label("t"), func.count().label("n")).group_by(postings.c.t).subquery("per_term")
    df = select(func.json_object_agg(per_term.c.t, per_term.c.n)).scalar_subquery()
    ST = T.search_terms.c
    n_docs = select(ST.df).where(ST.term == DOC_COUNT_TERM).scalar_subquery()
    n_tokens = select(ST.df).where(ST.term == TOKEN_COUNT_TERM).scalar_subquery()
    S = T.case_search.c
    q = (select(cand.c.case_id, S.title_terms, S.body_terms, S.internal_terms, df, n_docs, n_tokens)
         .select_from(cand.join(T.case_search, S.case_id == cand.c.case_id)))
    with _serial(conn):
        rows = conn.execute(q, params).all()
    if not rows:
        return []
    counts, n, total = rows[0][4] or {}, int(rows[0][5] or 0), int(rows[0][6] or 0)
    idfs = [bm25_idf(n, int(counts.get(str(i), 0))) for i in range(len(words))]
    avgdl = total / n if n and total else 0.0
    phrases = [fts_tokens(w) for w in words]
    w_int = weights.internal if staff else 0.0
    scored = []
    w_title, w_body = weights.title, weights.body
    for cid, title, body, internal, *_ in rows:
        tt, bt, it = fts_tokens(title), fts_tokens(body), fts_tokens(internal)
        # one count of each column's tokens serves every single-term phrase (most of them)
        tc, bc = Counter(tt), Counter(bt)
        ic = Counter(it) if w_int and it else None
        freqs = [(w_title * tc.get(p[0], 0) + w_body * bc.get(p[0], 0) + (w_int * ic.get(p[0], 0) if ic else 0.0))
                 if len(p) == 1 else
                 (w_title * phrase_count(tt, p) + w_body * phrase_count(bt, p)
                  + (w_int * phrase_count(it, p) if ic else 0.0))
                 for p in phrases]
        scored.append((int(cid), bm25(freqs, idfs, len(tt) + len(bt) + len(it), avgdl)))
    scored.sort(key=lambda x: (-x[1], x[0]))
    return scored[:limit]

