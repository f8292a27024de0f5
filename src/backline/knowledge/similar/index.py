"""Keeping the search index in step with the cases: a durable queue and its worker.

Every change that alters what a case says (created, title or intake edited,
note added or edited, findings stored, imported) adds a row to
``similar_queue`` **in the same transaction as the change**, so a change is
never lost and never costs the writer an embedding.  :class:`SimilarIndexer`
takes queued rows (a thread of ``backline serve``; ``backline case reindex``
and ``backline case import`` run it in the foreground), rebuilds each case's
:class:`~backline.knowledge.similar.text.CaseDoc`, embeds it outside any
transaction, and writes in one transaction: ``case_search`` (the lexical index
follows by trigger), the document frequencies in
``search_terms`` (with the cases' total number of tokens, for BM25 on PostgreSQL) and the vectors in ``case_vectors``.  A queue row is deleted
only up to the id that was read, so a change made while a case was being
embedded queues it again.  Writers lock the case rows first (in id order), so
two server processes indexing the same case one after the other, never
interleaved.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
from sqlalchemy import Connection, delete, insert, select, text
from sqlalchemy.engine import Engine

from backline.errors import SearchError
from backline.knowledge.similar.dense import to_blob
from backline.knowledge.similar.embed import DIM, MODEL_NAME, Embedder
from backline.knowledge.similar.text import TOKEN_COUNT_TERM, CaseDoc, build_doc, fts_tokens, terms
from backline.model.core import utc
from backline.storage import tables as T

log = logging.getLogger(__name__)

#: The ``search_terms`` row that counts indexed cases.
DOC_COUNT_TERM = ""
#: The ``search_terms`` row that counts writes to ``case_search`` (revision 0012; see :func:`bump_revision`).
REV_TERM = " rev"
_BUMP_REV = text("INSERT INTO search_terms (term, df) VALUES (' rev', 1) "
                 "ON CONFLICT (term) DO UPDATE SET df = search_terms.df + 1 RETURNING df")
_UPSERT_DF = text("INSERT INTO search_terms (term, df) VALUES (:term, :df) "
                  "ON CONFLICT (term) DO UPDATE SET df = search_terms.df + excluded.df")

EmbedderFactory = Callable[[], Embedder]


def enqueue(conn: Connection, case_id: int, reason: str, now: datetime) -> None:
    """Queue ``case_id`` for (re)indexing, inside the caller's transaction."""
    conn.execute(insert(T.similar_queue).values(case_id=case_id, reason=reason[:32], queued_at=now))


def bump_revision(conn: Connection) -> int:
    """The next revision of the lexical index, inside the writer's transaction.  On PostgreSQL the
    ``" rev"`` row stays locked until the writer commits, so writes commit in revision order and a
    reader that sees revision R has every write up to R (SQLite has one writer at a time anyway)."""
    return int(conn.execute(_BUMP_REV).scalar_one())


def _chunks(seq: Sequence, n: int) -> Iterable[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def load_docs(conn: Connection, case_ids: Sequence[int], *,
              known: Mapping[int, tuple[str, object]] | None = None) -> dict[int, CaseDoc]:
    """The :class:`CaseDoc` of each case, read from the case tables (``known``: case id ->
    ``(title, intake)`` already read by the caller, not read again)."""
    out: dict[int, CaseDoc] = {}
    for ids in _chunks(list(case_ids), 500):
        if known and all(i in known for i in ids):
            cases = [(i, *known[i]) for i in ids]
        else:
            cases = conn.execute(select(T.cases.c.id, T.cases.c.title, T.cases.c.intake)
                                 .where(T.cases.c.id.in_(ids))).all()
        notes: dict[int, list[tuple[str, str]]] = {}
        for cid, vis, body in conn.execute(select(T.notes.c.case_id, T.notes.c.visibility, T.notes.c.body)
                                           .where(T.notes.c.case_id.in_(ids)).order_by(T.notes.c.id)):
            notes.setdefault(cid, []).append((vis, body))
        findings: dict[int, list[dict]] = {}
        F = T.findings.c
        for r in conn.execute(select(F.case_id, F.code, F.title, F.detail, F.data)
                              .where(F.case_id.in_(ids)).order_by(F.severity.desc(), F.id)).mappings():
            findings.setdefault(r["case_id"], []).append(dict(r))
        for cid, title, intake in cases:
            out[cid] = build_doc(title, intake if isinstance(intake, Mapping) else {}, notes.get(cid, ()),
                                 findings.get(cid, ()))
    return out


def doc_vectors(embedder: Embedder, docs: Sequence[CaseDoc]) -> list[dict[str, np.ndarray]]:
    """``full``, ``title`` and (when there are internal notes) ``internal`` vectors of each doc."""
    texts: list[str] = []
    slots: list[tuple[int, str]] = []
    for i, d in enumerate(docs):
        texts.append(d.full_text())
        slots.append((i, "full"))
        texts.append(d.title)
        slots.append((i, "title"))
        if d.internal.strip():
            texts.append(d.internal)
            slots.append((i, "internal"))
    vecs = embedder.embed(texts)
    out: list[dict[str, np.ndarray]] = [{} for _ in docs]
    for (i, kind), v in zip(slots, vecs):
        out[i][kind] = v
    return out


class SimilarIndexer:
    """Writes the search index of cases (see the module docstring)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime], *,
                 embedder: EmbedderFactory | None = None):
        from backline.knowledge.similar.embed import shared_embedder
        self.engine = engine
        self.clock = clock
        self.embedder_factory = embedder or shared_embedder
        self.embed_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def embedder(self) -> Embedder | None:
        """The embedder, or None (with ``embed_error`` saying why) when the model is not installed."""
        try:
            emb = self.embedder_factory()
            self.embed_error = None
            return emb
        except SearchError as exc:
            if self.embed_error != str(exc):
                log.warning("similar cases without embeddings: %s", exc)
            self.embed_error = str(exc)
            return None

    # ------------------------------------------------------------------ writing
    def write(self, docs: Mapping[int, CaseDoc], *, embed: bool = True,
              queue_upto: Mapping[int, int] | None = None) -> int:
        """Index ``docs`` (case id -> doc); returns how many were written."""
        if not docs:
            return 0
        ids = sorted(docs)
        vectors: dict[int, dict[str, np.ndarray]] = {}
        if embed:
            with self.engine.connect() as conn:
                fresh = {cid for cid, h in conn.execute(
                    select(T.case_vectors.c.case_id, T.case_vectors.c.content_hash)
                    .where(T.case_vectors.c.case_id.in_(ids), T.case_vectors.c.kind == "full",
                           T.case_vectors.c.model == MODEL_NAME)) if h == docs[cid].content_hash()}
            todo = [cid for cid in ids if cid not in fresh]
            emb = self.embedder() if todo else None
            if emb is not None:
                for cid, v in zip(todo, doc_vectors(emb, [docs[c] for c in todo])):
                    vectors[cid] = v
        now = utc(self.clock())
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(select(T.cases.c.id).where(T.cases.c.id.in_(ids)).order_by(T.cases.c.id)
                             .with_for_update(key_share=True))
            rev = bump_revision(conn)      # first: the order writers take search_terms rows in
            S = T.case_search.c
            old = {cid: (t, b, i) for cid, t, b, i in conn.execute(
                select(S.case_id, S.title_terms, S.body_terms, S.internal_terms).where(S.case_id.in_(ids)))}
            delta: Counter[str] = Counter()
            rows = []
            for cid in ids:
                d = docs[cid]
                tt, bt, it = terms(d.title), terms(d.public), terms(d.internal)
                new_set = set(tt) | set(bt)
                delta[TOKEN_COUNT_TERM] += sum(len(fts_tokens(" ".join(x))) for x in (tt, bt, it))
                if cid in old:
                    old_set = set(old[cid][0].split()) | set(old[cid][1].split())
                    delta[TOKEN_COUNT_TERM] -= sum(len(fts_tokens(x)) for x in old[cid])
                else:
                    old_set = set()
                    delta[DOC_COUNT_TERM] += 1
                for t in new_set - old_set:
                    delta[t] += 1
                for t in old_set - new_set:
                    delta[t] -= 1
                rows.append({"case_id": cid, "title_terms": " ".join(tt), "body_terms": " ".join(bt),
                             "internal_terms": " ".join(it), "content_hash": d.content_hash(),
                             "indexed_at": now, "rev": rev})
            conn.execute(delete(T.case_search).where(S.case_id.in_(ids)))
            conn.execute(insert(T.case_search), rows)
            changes = [{"term": t, "df": n} for t, n in sorted(delta.items()) if n]
            if changes:
                conn.execute(_UPSERT_DF, changes)
            if vectors:
                conn.execute(delete(T.case_vectors).where(T.case_vectors.c.case_id.in_(list(vectors))))
                conn.execute(insert(T.case_vectors), [
                    {"case_id": cid, "kind": kind, "model": MODEL_NAME, "dim": DIM, "vector": to_blob(v),
                     "content_hash": docs[cid].content_hash()}
                    for cid in sorted(vectors) for kind, v in vectors[cid].items()])
            for cid, upto in sorted((queue_upto or {}).items()):
                conn.execute(delete(T.similar_queue).where(T.similar_queue.c.case_id == cid,
                                                           T.similar_queue.c.id <= upto))
        return len(ids)

    # ------------------------------------------------------------------ the queue
    def pending(self) -> int:
        from sqlalchemy import func
        with self.engine.connect() as conn:
            return conn.execute(select(func.count(func.distinct(T.similar_queue.c.case_id)))).scalar_one()

    def run_once(self, batch: int = 64) -> int:
        """Index the cases of the oldest queued rows (up to ``batch`` cases); returns how many."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(T.similar_queue.c.id, T.similar_queue.c.case_id)
                                .order_by(T.similar_queue.c.id).limit(batch * 4)).all()
            upto: dict[int, int] = {}
            for qid, cid in rows:
                if cid in upto or len(upto) < batch:
                    upto[cid] = max(qid, upto.get(cid, 0))
            docs = load_docs(conn, sorted(upto))
        return self.write(docs, queue_upto=upto)

    def run_pending(self, *, progress: Callable[[int], None] | None = None, batch: int = 64) -> int:
        n = 0
        while True:
            done = self.run_once(batch)
            if not done:
                return n
            n += done
            if progress:
                progress(done)

    def requeue_all(self, reason: str = "reindex") -> int:
        """Queue every case (after a model change, or to rebuild the index)."""
        now = utc(self.clock())
        with self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(select(T.cases.c.id).order_by(T.cases.c.id))]
            for part in _chunks(ids, 1000):
                conn.execute(insert(T.similar_queue), [{"case_id": c, "reason": reason, "queued_at": now}
                                                       for c in part])
        return len(ids)

    # --- background thread used by ``backline serve``
    def start(self, poll_seconds: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    if not self.run_once():
                        self._stop.wait(poll_seconds)
                except Exception:  # noqa: BLE001 - keep serving; the queue row stays for the next round
                    log.exception("similar-case indexer error")
                    self._stop.wait(poll_seconds * 5)

        self._thread = threading.Thread(target=loop, name="backline-similar", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
