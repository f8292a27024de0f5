"""The lexical index in memory: SQLite FTS5's ``bm25()`` ranking, computed from a compact copy of
``case_search``, on both backends.

Asking the database cost most of a similar-case query at 100,000 cases: FTS5 scores every case
holding a query term (2,000-4,300 of them: ~13 ms of CPU, 45 % of a SQLite query), and PostgreSQL
took 15-22 ms for the GIN step and ~13 ms of Python BM25 over its 300-case shortlist.  Here each
process keeps, per token (as FTS5's ``unicode61`` makes them: :func:`~.text.fts_tokens`), the
cases holding it with its count in the title, public and internal columns (postings sorted by
case id), and every case's tokens in order (for phrase terms such as ``foo_bar``, the phrase
``foo bar``), and ranks **every** matching case with FTS5's formula and inputs:

* idf ``log((N - n + 0.5) / (n + 0.5))`` (at least 1e-6), ``N`` the indexed cases, ``n`` those
  holding the phrase in the searched columns (title and public text; internal notes too for staff);
* a phrase's frequency: its count in each searched column times the column's weight;
* ``k1`` 1.2, ``b`` 0.75, the length of a case its tokens in all three columns, the average length
  over all cases;
* the same floating-point operations in the same order as ``fts5_aux.c``, so the scores are FTS5's
  to the last bit, and equal scores are ordered by case id, as SQLite's sort leaves FTS5's rows.

The visibility and product filter stays in SQL (:func:`~.lexical.search` asks the database which of
the best-ranked cases pass it, in rounds), so the access rule is written once.

**Keeping up**: every write to ``case_search`` is stamped with a revision (revision 0012: the
``" rev"`` row of ``search_terms``, read by the query's term-statistics statement at no extra
round trip).  When it moved, the rows written since are read (``case_search.rev`` is indexed) and
laid over the base arrays (the case's base postings are ignored from then on); past
:data:`OVERLAY_MAX` changed cases the whole index is rebuilt at the next query.  Memory at 100,000
synthetic cases (13.9 million tokens, 8.3 million postings): about 110 MB.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from sqlalchemy import Connection, select

from backline.knowledge.similar.text import fts_tokens
from backline.storage import tables as T

log = logging.getLogger(__name__)

#: FTS5's ``bm25()`` constants (``fts5_aux.c``).
K1 = 1.2
B = 0.75
#: Changed cases kept beside the base arrays before the index is rebuilt.
OVERLAY_MAX = 5_000
#: Rows of ``case_search`` read at a time when building.
LOAD_CHUNK = 5_000
_COLS = 3     # title, public text, internal notes


def exact_weights(*weights: float) -> bool:
    """Whether summing a column weight once per occurrence (as FTS5 does) and multiplying it by the
    count (as here) give the same double: true for weights with few binary digits (2, 1, 0.5, ...)."""
    return all(w >= 0 and float(w * 1024).is_integer() and w * 1024 < 2 ** 20 for w in weights)


@dataclass(slots=True)
class _Changed:
    """A case written after the base arrays were built: its tokens per column and their counts."""

    tokens: tuple[list[str], list[str], list[str]]
    counts: tuple[Counter, Counter, Counter] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = tuple(Counter(t) for t in self.tokens)

    @property
    def length(self) -> int:
        return sum(len(t) for t in self.tokens)


def _phrase_count(tokens: Sequence[str], phrase: Sequence[str]) -> int:
    n, first = len(phrase), phrase[0]
    return sum(1 for i, t in enumerate(tokens) if t == first and tokens[i:i + n] == list(phrase))


class LexicalIndex:
    """One process's in-memory copy of the lexical index (see the module docstring)."""

    def __init__(self, *, overlay_max: int = OVERLAY_MAX):
        self.overlay_max = overlay_max
        self._lock = threading.Lock()
        self.rev = -1                  # the revision the copy has every write of (-1: not loaded)
        self.builds = 0
        self._clear()

    def _clear(self) -> None:
        self.vocab: dict[str, int] = {}
        self.ptr = np.zeros(1, dtype=np.int64)            # postings of token v: ptr[v]:ptr[v+1]
        self.doc = np.zeros(0, dtype=np.int32)
        self.tf = np.zeros((_COLS, 0), dtype=np.uint16)
        self.fwd = np.zeros(0, dtype=np.int32)            # every base case's tokens, column by column
        self.off = np.zeros((0, _COLS + 1), dtype=np.int64)   # by case id: where its columns start, end
        self.length = np.zeros(0, dtype=np.int64)         # by case id: tokens in all columns
        self.base = np.zeros(0, dtype=bool)               # by case id: its base postings are current
        self.changed: dict[int, _Changed] = {}
        self.changed_by_token: dict[str, set[int]] = {}
        self.n_docs = 0
        self.n_tokens = 0

    # ------------------------------------------------------------------ keeping up
    def refresh(self, conn: Connection, rev: int | None) -> None:
        """Bring the copy up to revision ``rev`` (the ``" rev"`` row just read in this transaction;
        None: read it here)."""
        if rev is None:
            from backline.knowledge.similar.index import REV_TERM
            rev = int(conn.execute(select(T.search_terms.c.df).where(T.search_terms.c.term == REV_TERM))
                      .scalar() or 0)
        with self._lock:
            if rev == self.rev:
                return
            if self.rev < 0 or len(self.changed) > self.overlay_max or rev < self.rev:
                self._build(conn, rev)
                return
            S = T.case_search.c
            rows = conn.execute(select(S.case_id, S.title_terms, S.body_terms, S.internal_terms, S.rev)
                                .where(S.rev > self.rev).order_by(S.rev, S.case_id)).all()
            for cid, title, body, internal, _rev in rows:
                self._change(int(cid), (fts_tokens(title), fts_tokens(body), fts_tokens(internal)))
            # ``rev`` as read, not the highest row seen: on PostgreSQL a write committed after that
            # read may show in this statement; it is read again next time (a change is idempotent)
            self.rev = rev

    def _change(self, cid: int, tokens: tuple[list[str], list[str], list[str]]) -> None:
        new = _Changed(tokens)
        old = self.changed.pop(cid, None)
        if old is not None:
            self.n_tokens -= old.length
            for t in set().union(*old.counts):
                self.changed_by_token[t].discard(cid)
        elif cid < self.base.size and self.base[cid]:
            self.base[cid] = False
            self.n_tokens -= int(self.length[cid])
        else:
            self.n_docs += 1
        self.changed[cid] = new
        self.n_tokens += new.length
        for t in set().union(*new.counts):
            self.changed_by_token.setdefault(t, set()).add(cid)

    def _build(self, conn: Connection, rev: int) -> None:
        t0 = time.perf_counter()
        self._clear()
        S = T.case_search.c
        vocab = self.vocab
        parts_tok, parts_doc, parts_tf, parts_fwd = [], [], [], []
        offsets: list[np.ndarray] = []
        pos = 0
        last = -1
        while True:
            rows = conn.execute(select(S.case_id, S.title_terms, S.body_terms, S.internal_terms)
                                .where(S.case_id > last).order_by(S.case_id).limit(LOAD_CHUNK)).all()
            if not rows:
                break
            last = int(rows[-1][0])
            # the chunk's tokens in one list, turned into ids without a Python step per token
            toks: list[str] = []
            sizes = np.zeros((len(rows), _COLS), dtype=np.int64)
            for j, (_cid, *texts) in enumerate(rows):
                for c, text in enumerate(texts):
                    t = fts_tokens(text)
                    toks.extend(t)
                    sizes[j, c] = len(t)
            for t in set(toks).difference(vocab):
                vocab[t] = len(vocab)
            tok = np.fromiter(map(vocab.__getitem__, toks), dtype=np.int64, count=len(toks))
            del toks
            cids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            starts = pos + np.concatenate([[0], np.cumsum(sizes.ravel())]).reshape(-1)
            off = np.empty((len(rows), _COLS + 2), dtype=np.int64)
            off[:, 0] = cids
            off[:, 1:] = starts[np.arange(len(rows) * _COLS + 1, step=_COLS)[:, None][:-1] + np.arange(_COLS + 1)]
            offsets.append(off)
            pos += tok.size
            parts_fwd.append(tok.astype(np.uint16 if len(vocab) <= 2 ** 16 else np.int32))
            if tok.size:
                flat = sizes.ravel()
                docs = np.repeat(np.repeat(cids, _COLS), flat)
                cols = np.repeat(np.tile(np.arange(_COLS, dtype=np.int64), len(rows)), flat)
                # one key per (token, case, column), counted, then one posting per (token, case)
                key, count = np.unique((tok << 34) | (docs << 2) | cols, return_counts=True)
                del docs, cols
                tk = key >> 2                       # sorted: one posting where it changes
                first = np.empty(tk.size, dtype=bool)
                first[0] = True
                np.not_equal(tk[1:], tk[:-1], out=first[1:])
                tc = tk[first]
                slot = np.cumsum(first) - 1
                del tk, first
                tf = np.zeros((_COLS, tc.size), dtype=np.uint32)
                tf[key & 3, slot] = count
                if int(count.max()) < 2 ** 16:
                    tf = tf.astype(np.uint16)
                parts_tok.append((tc >> 32).astype(np.uint16 if len(vocab) <= 2 ** 16 else np.int32))
                parts_doc.append((tc & 0xFFFFFFFF).astype(np.int32))
                parts_tf.append(tf if tf[_COLS - 1].any() else tf[:_COLS - 1].copy())   # no internal notes: 2 rows
                del key, count, tc, slot, tf
            del tok
            if len(rows) < LOAD_CHUNK:
                break
        n_vocab = len(vocab)
        self.fwd = np.empty(pos, dtype=np.uint16 if n_vocab <= 2 ** 16 else np.int32)
        at = 0
        for i, f in enumerate(parts_fwd):
            self.fwd[at:at + f.size] = f
            at += f.size
            parts_fwd[i] = None
        # the postings in token order, each chunk's put straight in its place (no sort of them all,
        # no second copy: the build's peak stays near the index's own size)
        counts = np.zeros(n_vocab, dtype=np.int64)
        for t in parts_tok:
            counts += np.bincount(t, minlength=n_vocab)
        self.ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        total = int(self.ptr[-1])
        wide = any(p.dtype == np.uint32 for p in parts_tf)
        # no internal notes anywhere: that column's counts are not kept (all zero)
        rows_tf = max((p.shape[0] for p in parts_tf), default=_COLS - 1)
        self.doc = np.empty(total, dtype=np.int32)
        self.tf = np.empty((rows_tf, total), dtype=np.uint32 if wide else np.uint16)
        cursor = self.ptr[:-1].copy()
        for i, t in enumerate(parts_tok):       # sorted by token, then case, within a chunk
            run = np.flatnonzero(np.concatenate([[True], t[1:] != t[:-1]]))
            run_len = np.diff(np.concatenate([run, [t.size]]))
            at = cursor[t] + (np.arange(t.size) - np.repeat(run, run_len))
            self.doc[at] = parts_doc[i]
            self.tf[:parts_tf[i].shape[0], at] = parts_tf[i]
            if parts_tf[i].shape[0] < rows_tf:
                self.tf[rows_tf - 1, at] = 0
            cursor[t[run]] += run_len
            parts_tok[i] = parts_doc[i] = parts_tf[i] = None
        arr = np.concatenate(offsets) if offsets else np.zeros((0, _COLS + 2), dtype=np.int64)
        top = int(arr[:, 0].max(initial=0)) + 1
        self.off = np.zeros((top, _COLS + 1), dtype=np.int64)
        self.base = np.zeros(top, dtype=bool)
        self.off[arr[:, 0]] = arr[:, 1:]
        self.base[arr[:, 0]] = True
        self.length = self.off[:, _COLS] - self.off[:, 0]
        self.n_docs = int(arr.shape[0])
        self.n_tokens = int(self.length.sum())
        self.rev = rev          # writes after ``rev`` that the chunks saw in part are read again next time
        self.builds += 1
        log.info("lexical index: %d cases, %d tokens, %d postings in %.1f s", self.n_docs, self.n_tokens,
                 self.doc.size, time.perf_counter() - t0)

    def stats(self) -> dict[str, int]:
        nbytes = sum(a.nbytes for a in (self.ptr, self.doc, self.tf, self.fwd, self.off, self.length, self.base))
        return {"cases": self.n_docs, "tokens": self.n_tokens, "postings": int(self.doc.size),
                "changed": len(self.changed), "bytes": int(nbytes), "rev": self.rev}

    # ------------------------------------------------------------------ ranking
    def rank(self, words: Sequence[str], *, staff: bool, title: float, body: float,
             internal: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Every case holding one of ``words`` in the searched columns and its FTS5 ``bm25()`` score
        (positive), best first (equal scores by case id); None when this copy cannot rank these
        words exactly as FTS5 would (the caller asks the database)."""
        phrases = [fts_tokens(w) for w in words]
        w_int = internal if staff else 0.0
        if not phrases or any(not p for p in phrases) or not exact_weights(title, body, w_int):
            return None
        with self._lock:
            if self.rev < 0:
                return None
            found = [self._phrase(p, staff, (title, body, w_int)) for p in phrases]
            n = self.n_docs
            avgdl = self.n_tokens / n if n else 0.0
            hits = [d for d, _f in found if d.size]
            if not hits or n == 0:
                return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
            cases = _sorted_unique(np.concatenate(hits))
            D = self._lengths(cases).astype(np.float64)
        norm = K1 * (1.0 - B + B * D / avgdl) if avgdl > 0 else np.full(cases.size, K1)
        score = np.zeros(cases.size, dtype=np.float64)
        for docs, freq in found:
            idf = _idf(n, int(docs.size))
            f = np.zeros(cases.size, dtype=np.float64)
            if docs.size:
                f[np.searchsorted(cases, docs)] = freq
            # fts5_aux.c: score += aIDF[i] * ((aFreq[i] * (k1 + 1.0)) / (aFreq[i] + k1 * (1 - b + b * D / avgdl)))
            score += idf * ((f * (K1 + 1.0)) / (f + norm))
        order = np.lexsort((cases, -score))
        return cases[order], score[order]

    def _lengths(self, cases: np.ndarray) -> np.ndarray:
        out = np.zeros(cases.size, dtype=np.int64)
        inside = cases < self.length.size
        out[inside] = self.length[cases[inside]]
        for j in np.flatnonzero(~inside | ~self._in_base(cases)).tolist():
            ch = self.changed.get(int(cases[j]))
            if ch is not None:
                out[j] = ch.length
        return out

    def _in_base(self, cases: np.ndarray) -> np.ndarray:
        ok = cases < self.base.size
        out = np.zeros(cases.size, dtype=bool)
        out[ok] = self.base[cases[ok]]
        return out

    def _phrase(self, phrase: list[str], staff: bool, w: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
        """The cases holding ``phrase`` in the searched columns (sorted) and its weighted frequency in each."""
        cols = _COLS if staff else 2
        ids = [self.vocab.get(t) for t in phrase]
        if None in ids:
            docs = np.zeros(0, dtype=np.int64)
            counts = np.zeros((_COLS, 0), dtype=np.int64)
        elif len(ids) == 1:
            s, e = self.ptr[ids[0]], self.ptr[ids[0] + 1]
            docs = self.doc[s:e].astype(np.int64)
            counts = np.zeros((_COLS, e - s), dtype=np.int64)
            counts[:self.tf.shape[0]] = self.tf[:, s:e]
        else:
            docs, counts = self._phrase_in_base(ids)
        if docs.size:
            live = self._in_base(docs)
            docs, counts = docs[live], counts[:, live]
        # the changed cases, from their own tokens
        extra = set.intersection(*(self.changed_by_token.get(t, set()) for t in phrase)) if self.changed else set()
        if extra:
            more = sorted(extra)
            add = np.zeros((_COLS, len(more)), dtype=np.int64)
            for j, cid in enumerate(more):
                ch = self.changed[cid]
                for c in range(_COLS):
                    add[c, j] = (ch.counts[c][phrase[0]] if len(phrase) == 1
                                 else _phrase_count(ch.tokens[c], phrase))
            docs = np.concatenate([docs, np.asarray(more, dtype=np.int64)])
            counts = np.concatenate([counts, add], axis=1)
            order = np.argsort(docs, kind="stable")
            docs, counts = docs[order], counts[:, order]
        held = counts[:cols].sum(axis=0) > 0
        docs, counts = docs[held], counts[:, held]
        freq = w[0] * counts[0].astype(np.float64) + w[1] * counts[1] + w[2] * counts[2]
        return docs, freq

    def _phrase_in_base(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Cases of the base arrays holding every token of a phrase, and the phrase's count in each
        column (consecutive tokens within one column, overlapping ones included, as FTS5 counts)."""
        docs = None
        for v in sorted(set(ids), key=lambda v: self.ptr[v + 1] - self.ptr[v]):
            d = self.doc[self.ptr[v]:self.ptr[v + 1]]
            docs = d if docs is None else np.intersect1d(docs, d, assume_unique=True)
            if not docs.size:
                break
        docs = np.asarray(docs, dtype=np.int64)
        counts = np.zeros((_COLS, docs.size), dtype=np.int64)
        m = len(ids)
        if not docs.size:
            return docs, counts
        want = np.asarray(ids, dtype=np.int32)
        for c in range(_COLS):
            start, end = self.off[docs, c], self.off[docs, c + 1]
            n_win = np.maximum(end - start - m + 1, 0)
            total = int(n_win.sum())
            if not total:
                continue
            which = np.repeat(np.arange(docs.size), n_win)
            first = np.repeat(start - np.concatenate([[0], np.cumsum(n_win)[:-1]]), n_win) + np.arange(total)
            ok = np.ones(total, dtype=bool)
            for k in range(m):
                ok &= self.fwd[first + k] == want[k]
            counts[c] = np.bincount(which[ok], minlength=docs.size)
        return docs, counts


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    a = np.sort(a)
    if a.size:
        keep = np.empty(a.size, dtype=bool)
        keep[0] = True
        np.not_equal(a[1:], a[:-1], out=keep[1:])
        a = a[keep]
    return a


def _idf(n_docs: int, n_hit: int) -> float:
    """FTS5's idf (``fts5_aux.c``): ``log((N - n + 0.5) / (n + 0.5))``, 1e-6 where not positive."""
    import math
    v = math.log((n_docs - n_hit + 0.5) / (n_hit + 0.5))
    return v if v > 0.0 else 1e-6
