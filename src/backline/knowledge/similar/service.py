"""Similar past cases for a case or for text being typed at intake.  No HTTP here.

The query (a case's :class:`~backline.knowledge.similar.text.CaseDoc`, or text)
is searched three ways, each over the cases the caller may see, in the query
case's product unless asked otherwise:

* lexical: its most telling terms against the database's full-text index;
* dense: its ``full`` vector (and, for staff, its internal-notes vector)
  against every case's ``full`` (and internal) vectors;
* title: its title vector against every case's title vector;

and the ranked lists are fused (:mod:`~backline.knowledge.similar.fusion`)
with the time between the filings and exact crash signature/bucket matches.
Internal notes are part of neither the query nor the candidates for
customers.  Results are checked against the case-visibility rule once more
before they are returned; the query case itself is never among them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

import numpy as np
from sqlalchemy import Connection, and_, bindparam, or_, select
from sqlalchemy.sql.elements import ColumnElement

from backline.cases.access import Action, can_see, require, visible_filter
from backline.cases.model import Role, User
from backline.cases.service import CaseService
from backline.errors import CaseError, NotFound
from backline.knowledge.similar import lexical
from backline.knowledge.similar.dense import Filter, VectorCache
from backline.knowledge.similar.embed import DIM, MODEL_NAME
from backline.knowledge.similar.fusion import DEFAULT_WEIGHTS, FusionWeights, fuse
from backline.knowledge.similar.index import DOC_COUNT_TERM, REV_TERM, SimilarIndexer, doc_vectors, load_docs
from backline.knowledge.similar.lexindex import LexicalIndex
from backline.knowledge.similar.text import CaseDoc, build_doc, idf, pick_terms, strings_in, terms
from backline.model.core import utc
from backline.storage import tables as T

log = logging.getLogger(__name__)

MAX_LIMIT = 100
#: Intake hints: the least fused score shown (about "near the top of two of the three lists")
#: and the least number of distinct words typed before anything is compared.
INTAKE_MIN_SCORE = 0.5
INTAKE_MIN_TERMS = 3
MAX_QUERY_TEXT = 100_000
#: The document frequencies of a query's terms: one statement whose list is bound as a whole (built
#: per query, ``in_`` of a few hundred values coerced each value: ~3 ms of Python a query).
_DF = (select(T.search_terms.c.term, T.search_terms.c.df)
       .where(T.search_terms.c.term.in_(bindparam("terms", expanding=True))))
_OWNER = T.users.alias("owner_u")
#: The hits' rows with their stored terms (for the "shared terms" reason): one statement, and only
#: the columns shown or checked (not the JSON ones: decoding 20 intakes cost ~1 ms a query).
_HIT_COLUMNS = ("id", "key", "title", "status", "product", "created_at", "org", "team", "created_by")  # (+ can_see's)
_HITS = (select(*(T.cases.c[c] for c in _HIT_COLUMNS), _OWNER.c.name.label("owner_name"), T.case_external.c.external_id,
                T.case_search.c.title_terms.label("s_title"), T.case_search.c.body_terms.label("s_body"),
                T.case_search.c.internal_terms.label("s_internal"))
         .join(_OWNER, _OWNER.c.id == T.cases.c.owner_id, isouter=True)
         .join(T.case_external, T.case_external.c.case_id == T.cases.c.id, isouter=True)
         .join(T.case_search, T.case_search.c.case_id == T.cases.c.id, isouter=True)
         .where(T.cases.c.id.in_(bindparam("ids", expanding=True))))


@dataclass(frozen=True, slots=True)
class SimilarHit:
    key: str
    external_id: str | None
    title: str
    score: float
    why: tuple[str, ...]
    status: str
    owner: str | None
    product: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "external_id": self.external_id, "title": self.title,
                "score": round(self.score, 4), "why": list(self.why), "status": self.status,
                "owner": self.owner, "product": self.product, "created_at": self.created_at.isoformat()}

    def hint(self) -> str:
        """One line for the intake form: ``this looks like ESC-1042, open, owned by erin``."""
        state = "closed" if self.status in ("resolved", "closed") else "open"
        who = f", owned by {self.owner}" if self.owner else ", no owner yet"
        return f"this looks like {self.key} ({self.title}), {state}{who}"


@dataclass(frozen=True, slots=True)
class _Query:
    doc: CaseDoc
    product: str | None
    exclude: int | None
    created: float
    vectors: Mapping[str, np.ndarray]
    cache_fresh: bool = False     # the vector cache was just brought up to date for this query


@dataclass(frozen=True, slots=True)
class Candidates:
    """What the three searches and the exact signals found for one query, before fusion."""

    ranked: Mapping[str, Sequence[int]]          # lexical / dense / title: case ids best first
    cosine: Mapping[int, float]                  # dense list: best cosine of each case
    title_cosine: Mapping[int, float]
    time_ranks: Mapping[int, int]
    signatures: Mapping[int, Sequence[str]]      # case id -> shared signature keys
    picked: Sequence[str]                        # the query terms asked of the lexical index

    def fuse(self, w: FusionWeights) -> list[tuple[int, float, dict[str, int]]]:
        return fuse(self.ranked, w, time_ranks=self.time_ranks if w.time else None,
                    signature_matches=list(self.signatures) if w.signature else ())


class SimilarService:
    """Similar-case search over the cases of one database."""

    def __init__(self, cases: CaseService, indexer: SimilarIndexer, *,
                 weights: FusionWeights = DEFAULT_WEIGHTS, lexical_in_memory: bool = True):
        self.cases = cases
        self.indexer = indexer
        self.weights = weights
        self.cache = VectorCache(MODEL_NAME, DIM)
        #: the lexical index in memory (None: every lexical query asks the database's full-text index;
        #: the same lists, see lexindex.py)
        self.lexindex: LexicalIndex | None = LexicalIndex() if lexical_in_memory else None

    # ------------------------------------------------------------------ entry points
    def resolve(self, conn: Connection, user: User, key_or_external: str):
        """The case row for ``ESC-1042`` or for an imported case's external id."""
        row = conn.execute(select(T.cases).where(T.cases.c.key == key_or_external)).mappings().first()
        if row is None:
            row = conn.execute(select(T.cases).join(T.case_external, T.case_external.c.case_id == T.cases.c.id)
                               .where(T.case_external.c.external_id == key_or_external)).mappings().first()
        if row is None or not can_see(user, row):
            raise NotFound(f"no case {key_or_external}", locator=f"case:{key_or_external}")
        return row

    def for_case(self, user: User, key_or_external: str, *, limit: int = 10, any_product: bool = False,
                 weights: FusionWeights | None = None) -> list[SimilarHit]:
        """Cases like ``key_or_external`` (which is never among them), best first."""
        require(user, Action.READ_CASE)
        limit = _limit(limit)
        return self._search(user, self._case_query(user, key_or_external, any_product=any_product), limit,
                            weights or self.weights)

    def _case_query(self, user: User, key_or_external: str, *, any_product: bool) -> _Query:
        with self.cases.reader.connect() as conn:
            row = self.resolve(conn, user, key_or_external)
            doc = load_docs(conn, [row["id"]], known={row["id"]: (row["title"], row["intake"])})[row["id"]]
            if not user.role.is_staff:
                doc = CaseDoc(doc.title, doc.public, "", doc.signatures)
            vectors = self._stored_vectors(conn, row["id"], doc)
        if vectors is None:
            vectors = self._embed(doc)
        return _Query(doc, None if any_product else row["product"], row["id"], utc(row["created_at"]).timestamp(),
                      vectors, cache_fresh=True)

    def for_text(self, user: User, text: str, *, title: str | None = None, product: str | None = None,
                 intake: Mapping[str, Any] | None = None, limit: int = 10,
                 weights: FusionWeights | None = None, exclude: str | None = None) -> list[SimilarHit]:
        """Cases like a text being written (an escalation at intake), best first; ``exclude`` is
        the key of a case never to answer (the one just filed from this text)."""
        require(user, Action.READ_CASE)
        if len(text or "") > MAX_QUERY_TEXT:
            raise CaseError(f"query text is longer than {MAX_QUERY_TEXT} characters")
        body = (text or "").strip()
        head = (title or body.split("\n", 1)[0][:300]).strip()
        if not head and not body and not intake:
            raise CaseError("nothing to search for: give a title, text or intake items")
        doc = build_doc(head, dict(intake or {}) | ({"text": body} if body and body != head else {}), (), ())
        exclude_id = None
        if exclude:
            with self.cases.reader.connect() as conn:
                exclude_id = conn.execute(select(T.cases.c.id).where(T.cases.c.key == exclude)).scalar()
        q = _Query(doc, product, exclude_id, utc(self.cases.clock()).timestamp(), self._embed(doc))
        return self._search(user, q, _limit(limit), weights or self.weights)

    def intake_matches(self, user: User, *, title: str, product: str | None, intake: Mapping[str, Any],
                       exclude: str | None = None, limit: int = 3,
                       min_score: float = INTAKE_MIN_SCORE) -> list[dict[str, Any]]:
        """The cases an escalation being written looks like (``to_json`` plus the one-line ``hint``),
        those scoring ``min_score`` or more; none while there are fewer than
        :data:`INTAKE_MIN_TERMS` words to compare (a half-typed title matches anything)."""
        words = terms(title) + [t for s in strings_in(intake) for t in terms(s)]
        if len(set(words)) < INTAKE_MIN_TERMS:
            return []
        hits = self.for_text(user, "", title=title, product=product, intake=intake, limit=limit, exclude=exclude)
        return [h.to_json() | {"hint": h.hint()} for h in hits if h.score >= min_score]

    def intake_hints(self, user: User, *, title: str, product: str | None, intake: Mapping[str, Any],
                     limit: int = 3, min_score: float = INTAKE_MIN_SCORE) -> list[str]:
        """Lines like ``this looks like ESC-1042 (...), open, owned by erin`` for an escalation being written."""
        return [m["hint"] for m in self.intake_matches(user, title=title, product=product, intake=intake,
                                                       limit=limit, min_score=min_score)]

    def panel(self, user: User, key: str, *, limit: int = 5) -> list[dict[str, Any]]:
        """The case page's "Similar cases" panel: hits as JSON, with the one-line hint."""
        return [h.to_json() | {"hint": h.hint()} for h in self.for_case(user, key, limit=limit)]

    # ------------------------------------------------------------------ parts
    def _stored_vectors(self, conn: Connection, case_id: int, doc: CaseDoc) -> dict[str, np.ndarray] | None:
        self.cache.refresh(conn)
        stored = self.cache.vectors_of(case_id)
        h = conn.execute(select(T.case_vectors.c.content_hash).where(
            T.case_vectors.c.case_id == case_id, T.case_vectors.c.kind == "full",
            T.case_vectors.c.model == MODEL_NAME)).scalar()
        if "full" not in stored or h != doc.content_hash():
            return None
        if not doc.internal:
            stored.pop("internal", None)
        return stored

    def _embed(self, doc: CaseDoc) -> dict[str, np.ndarray]:
        emb = self.indexer.embedder()
        return doc_vectors(emb, [doc])[0] if emb is not None else {}

    def _filters(self, user: User, q: _Query) -> tuple[ColumnElement[bool], Filter]:
        where = visible_filter(user)
        product_code = None
        if q.product is not None:
            where = and_(where, T.cases.c.product == q.product)
            product_code = self.cache.code("product", q.product)
        if q.exclude is not None:
            where = and_(where, T.cases.c.id != q.exclude)
        flt = Filter(product=product_code, exclude_case=q.exclude, internal=user.role.is_staff)
        if user.role is Role.CUSTOMER:
            flt = Filter(org=self.cache.code("org", user.org), product=product_code, exclude_case=q.exclude)
        elif user.role is Role.SUPPORT:
            team = self.cache.code("team", user.team) if user.team else None
            flt = Filter(creator=user.id, team=team, product=product_code, exclude_case=q.exclude, internal=True)
        return where, flt

    def _gather(self, conn: Connection, user: User, q: _Query, w: FusionWeights) -> Candidates:
        """The ranked lists and signals for ``q`` (everything but the fusion)."""
        staff = user.role.is_staff
        if not q.cache_fresh:         # (a case query refreshed it a moment ago: one round trip less)
            self.cache.refresh(conn)
        where, flt = self._filters(user, q)
        # lexical: the query's most telling terms against the full-text index
        qterms = terms(q.doc.title) + terms(q.doc.public) + (terms(q.doc.internal) if staff else [])
        uniq = list(dict.fromkeys(qterms))[:5000]
        df = dict(conn.execute(_DF, {"terms": uniq + [DOC_COUNT_TERM, REV_TERM]}).all())
        n_docs = int(df.pop(DOC_COUNT_TERM, 0))
        rev = int(df.pop(REV_TERM, 0))
        picked = pick_terms(qterms, df, n_docs=n_docs, limit=w.lexical_terms, max_postings=w.lexical_postings)
        idfs = {t: idf(df.get(t, 0), max(n_docs, 1)) for t in picked}
        lex = (lexical.search(conn, picked, idfs, where=where, staff=staff, limit=w.depth, index=self.lexindex,
                              rev=rev) if w.lexical else [])
        # dense: full text (+ internal notes for staff) and titles, one pass over the vectors
        lists: list[tuple[list[np.ndarray], list[str]]] = [([], []), ([], [])]
        if "full" in q.vectors and w.dense:
            qs = [q.vectors["full"]] + ([q.vectors["internal"]] if staff and "internal" in q.vectors else [])
            lists[0] = (qs, ["full", "internal"] if staff else ["full"])
        if "title" in q.vectors and w.title:
            lists[1] = ([q.vectors["title"]], ["title"])
        dense, titles = self.cache.search(lists, flt, w.depth)
        dense = [(c, x) for c, x in dense if x >= w.min_cosine]
        titles = [(c, x) for c, x in titles if x >= w.min_cosine]
        # exact signals: the same crash signature or bucket
        # (recorded in ``case_signatures`` by the job runner, see backline.cases.signatures)
        signatures: dict[int, list[str]] = {}
        if q.doc.signatures and w.signature:
            S = T.case_signatures.c
            pairs = [k.partition(":")[::2] for k in q.doc.signatures]
            sq = (select(S.case_id, S.kind, S.value).join(T.cases, T.cases.c.id == S.case_id)
                  .where(or_(*[and_(S.kind == k, S.value == v) for k, v in pairs]), visible_filter(user))
                  .distinct().limit(200))
            if q.exclude is not None:
                sq = sq.where(S.case_id != q.exclude)
            for cid, kind, value in conn.execute(sq):
                key = f"{kind}:{value}"
                if key not in signatures.setdefault(cid, []):
                    signatures[cid].append(key)
        ranked = {"lexical": [c for c, _ in lex], "dense": [c for c, _ in dense], "title": [c for c, _ in titles]}
        pool = set().union(*map(set, ranked.values())) | set(signatures)
        time_ranks = self.cache.time_ranks(flt.product if q.product is not None else None, q.created, list(pool))
        return Candidates(ranked, dict(dense), dict(titles), time_ranks, signatures, picked)

    def _search(self, user: User, q: _Query, limit: int, w: FusionWeights) -> list[SimilarHit]:
        staff = user.role.is_staff
        t0 = time.perf_counter()
        with self.cases.reader.connect() as conn:
            cand = self._gather(conn, user, q, w)
            top = [c for c in cand.fuse(w) if c[0] != q.exclude][:limit * 2]
            ids = [c for c, _, _ in top]
            rows = {r["id"]: r for r in conn.execute(_HITS, {"ids": ids}).mappings()} if top else {}
        terms_of = {cid: set(" ".join([r["s_title"] or "", r["s_body"] or ""]
                                      + ([r["s_internal"] or ""] if staff else [])).split())
                    for cid, r in rows.items()}
        hits: list[SimilarHit] = []
        for cid, score, ranks in top:
            row = rows.get(cid)
            if row is None or not can_see(user, row):
                continue
            why = _why(ranks, cand.picked, terms_of.get(cid, set()), cand.cosine.get(cid), cand.title_cosine.get(cid),
                       cand.signatures.get(cid, ()), utc(row["created_at"]).timestamp() - q.created)
            hits.append(SimilarHit(row["key"], row["external_id"], row["title"], score, why, row["status"],
                                   row["owner_name"], row["product"], utc(row["created_at"])))
            if len(hits) >= limit:
                break
        log.debug("similar: %d hits in %.1f ms", len(hits), (time.perf_counter() - t0) * 1000)
        return hits

    def candidates(self, user: User, key_or_external: str, *, weights: FusionWeights | None = None) -> Candidates:
        """The unfused lists for a case (for tuning: ``benchmarks/similar_eval.py`` fuses them many ways)."""
        require(user, Action.READ_CASE)
        w = weights or self.weights
        q = self._case_query(user, key_or_external, any_product=False)
        with self.cases.reader.connect() as conn:
            return self._gather(conn, user, q, w)


def _limit(limit: int) -> int:
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise CaseError(f"limit must be 1..{MAX_LIMIT}")
    return int(limit)


def _why(ranks: Mapping[str, int], picked: Sequence[str], cand_terms: set[str], cosine: float | None,
         title_cosine: float | None, signatures: Sequence[str], seconds_apart: float) -> tuple[str, ...]:
    """Plain reasons, strongest first: ``same crash signature ...``, ``shared terms: ...``, ..."""
    out = []
    for s in sorted(signatures, key=lambda v: (not v.startswith("signature:"), v)):
        kind, _, value = s.partition(":")
        out.append(f"same crash {kind}: {value}")
    shared = [t for t in picked if t in cand_terms]
    if shared and "lexical" in ranks:
        out.append(f"shared terms (#{ranks['lexical']} by words): " + ", ".join(shared[:8]))
    if cosine is not None and "dense" in ranks:
        out.append(f"similar text (#{ranks['dense']} by meaning, cosine {cosine:.2f})")
    if title_cosine is not None and "title" in ranks and ranks["title"] <= 10:
        out.append(f"similar title (#{ranks['title']}, cosine {title_cosine:.2f})")
    days = abs(seconds_apart) / 86400
    if "time" in ranks and days <= 30:
        out.append("filed the same day" if days < 1 else f"filed {days:.0f} days apart")
    return tuple(out)
