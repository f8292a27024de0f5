"""The dense half: every stored case vector in one in-memory matrix, searched by dot product.

Vectors live in ``case_vectors`` (float16, unit length, tagged with the model
name and dimension).  Each process keeps a copy, float16 as stored (so nothing
is lost by keeping it at half the size of float32), with the facts the filters need (organisation, team, creator, product, creation time), loaded
once and then topped up: a query first asks for ``max(id)`` and loads only the
rows added since (a re-indexed case gets new rows; its old ones are dropped
from the copy).  Every ``FULL_CHECK_SECONDS`` the row count is compared too,
and a mismatch (rows another process committed out of id order) reloads all.

Search is exact below :data:`SHORTLIST_FROM` rows (one matrix product).  Above,
where reading the whole matrix for every query costs more than the
query may (100,000 cases x 2 vectors are 150 MB in float16, and numpy has no
fast float16 product), it is done in two steps: the query is compared with a
projection of every row onto the :data:`REDUCED_DIM` main axes of the stored
vectors (a quarter of the memory read: the axes are the top eigenvectors of
the rows' second-moment matrix, so dot products are kept as well as that many
dimensions can), the :data:`SHORTLIST` best rows that pass the filter are
compared again exactly, and only those are ranked.  A row whose true rank is
in the top 100 but whose projected rank is below the shortlist is the only
loss (measured in ``tests/knowledge/similar/test_dense.py``).

Memory: 100,000 cases with a ``full`` and a ``title`` vector are about 150 MB
(float16), and 50 MB more for the projection (float32).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from sqlalchemy import Connection, func, select

from backline.storage import tables as T

KINDS = ("full", "title", "internal")
FULL_CHECK_SECONDS = 30.0
#: Rows from which search goes through the projection (below, the exact product is cheap).
SHORTLIST_FROM = 20_000
#: Dimensions of the projection and rows compared exactly after it.
REDUCED_DIM = 64
SHORTLIST = 1500
#: Rows read from the database at a time.
LOAD_CHUNK = 20_000
#: Rows sampled to find the projection's axes.
_BASIS_SAMPLE = 20_000
_KIND_CODE = {k: i for i, k in enumerate(KINDS)}


_blas: Any = None


def _one_blas_thread():
    """BLAS limited to one thread for a query's products: they are small, and on a busy machine
    OpenBLAS's threads wait for each other (measured: median 114 ms with two threads, 11 ms with one,
    for the 200,000-row projection product with other work on both cores)."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController
        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


def to_blob(vec: np.ndarray) -> bytes:
    """A unit vector as stored (float16, little-endian).

    >>> v = np.array([0.6, 0.8], dtype=np.float32); from_blob(to_blob(v), 2).tolist()
    [0.60009765625, 0.7998046875]
    """
    return np.asarray(vec, dtype="<f2").tobytes()


def from_blob(blob: bytes, dim: int) -> np.ndarray:
    arr = np.frombuffer(blob, dtype="<f2")
    if arr.shape != (dim,):
        raise ValueError(f"stored vector has {arr.size} values, expected {dim}")
    return arr.astype(np.float32)


def _half_from_blob(blob: bytes, dim: int) -> np.ndarray:
    arr = np.frombuffer(blob, dtype="<f2")
    if arr.shape != (dim,):
        raise ValueError(f"stored vector has {arr.size} values, expected {dim}")
    return arr


@dataclass(frozen=True, slots=True)
class Filter:
    """Which cases a query may see, as codes of the cache (see :meth:`VectorCache.filter_for`)."""

    org: int | None = None          # customers: their organisation only
    creator: int | None = None      # support: cases they created ...
    team: int | None = None         # ... or their team's
    product: int | None = None      # -1 means "a product no case has"
    exclude_case: int | None = None
    internal: bool = False          # staff: internal-note vectors count


class _Block:
    """The projected rows of one kind: their indices in the cache's arrays and their projections,
    grown by appending (amortised), kept in row order."""

    def __init__(self) -> None:
        self.n = 0
        self.rows = np.zeros(0, dtype=np.int64)
        self.red = np.zeros((0, REDUCED_DIM), dtype=np.float32)

    def append(self, rows: np.ndarray, red: np.ndarray) -> None:
        need = self.n + rows.size
        if need > self.rows.size:
            cap = max(need, int(self.rows.size * 1.25) + 1024)
            grown_rows = np.zeros(cap, dtype=np.int64)
            grown_rows[:self.n] = self.rows[:self.n]
            grown_red = np.zeros((cap, red.shape[1]), dtype=np.float32)
            grown_red[:self.n] = self.red[:self.n]
            self.rows, self.red = grown_rows, grown_red
        self.rows[self.n:need] = rows
        self.red[self.n:need] = red
        self.n = need

    def keep(self, keep: np.ndarray) -> None:
        """Follow a compaction: only the rows in ``keep`` (sorted old indices) stay, renumbered."""
        rows = self.rows[:self.n]
        alive = np.isin(rows, keep)
        self.red = self.red[:self.n][alive].copy()
        self.rows = np.searchsorted(keep, rows[alive]).astype(np.int64)
        self.n = self.rows.size


class VectorCache:
    """The process's copy of ``case_vectors`` for one model."""

    def __init__(self, model: str, dim: int):
        self.model = model
        self.dim = dim
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self.last_id = 0
        self.vecs = np.zeros((0, self.dim), dtype=np.float16)
        self.case = np.zeros(0, dtype=np.int64)
        self.kind = np.zeros(0, dtype=np.int8)
        self.org = np.zeros(0, dtype=np.int32)
        self.team = np.zeros(0, dtype=np.int32)
        self.creator = np.zeros(0, dtype=np.int64)
        self.product = np.zeros(0, dtype=np.int32)
        self.created = np.zeros(0, dtype=np.float64)
        self.live = np.zeros(0, dtype=bool)
        self.rows_of: dict[int, list[int]] = {}
        self.codes: dict[str, dict[str | None, int]] = {"org": {}, "team": {None: 0}, "product": {}}
        self.live_count = 0
        self._checked = 0.0
        self._times: dict[int, np.ndarray] | None = None
        self.basis: np.ndarray | None = None       # (dim, REDUCED_DIM) once there are SHORTLIST_FROM rows
        # the projection, one block per kind (a query's full-text vectors are compared with the
        # full-text rows only, its title vector with the title rows: half the product of one matrix)
        self.blocks = [_Block() for _ in KINDS]

    # ------------------------------------------------------------------ loading
    def code(self, what: str, value: str | None, *, add: bool = False) -> int:
        table = self.codes[what]
        if value not in table:
            if not add:
                return -1
            table[value] = len(table) + 1
        return table[value]

    def refresh(self, conn: Connection) -> None:
        """Bring the copy up to date with the database (one indexed query when nothing changed)."""
        V = T.case_vectors.c
        with self._lock:
            top = conn.execute(select(func.max(V.id))).scalar() or 0
            if top > self.last_id:
                self._load(conn, self.last_id)
                self.last_id = max(self.last_id, top)
            now = time.monotonic()
            if now - self._checked > FULL_CHECK_SECONDS:
                self._checked = now
                count = conn.execute(select(func.count()).select_from(T.case_vectors)
                                     .where(V.model == self.model, V.dim == self.dim)).scalar_one()
                if count != self.live_count:
                    self._reset()
                    self._checked = now
                    self._load(conn, 0)
                    self.last_id = max(self.last_id, top)

    def _load(self, conn: Connection, after: int) -> None:
        V, C = T.case_vectors.c, T.cases.c
        q = (select(V.id, V.case_id, V.kind, V.vector, V.dim, C.org, C.team, C.created_by, C.product,
                    C.created_at)
             .join(T.cases, T.cases.c.id == V.case_id)
             .where(V.model == self.model, V.dim == self.dim).order_by(V.id).limit(LOAD_CHUNK))
        coming = conn.execute(select(func.count()).select_from(T.case_vectors)
                              .where(V.id > after, V.model == self.model, V.dim == self.dim)).scalar_one()
        if self.n + coming > len(self.case):        # one allocation, not a copy per chunk
            self._grow(self.n + coming + 1024)
        fresh: set[int] = set()
        while True:         # in chunks: 200,000 rows as Python objects at once would cost 250 MB
            rows = conn.execute(q.where(V.id > after)).all()
            if not rows:
                break
            self._add(rows, fresh)
            after = rows[-1].id
            if len(rows) < LOAD_CHUNK:
                break
        if self.basis is None and self.live_count >= SHORTLIST_FROM:
            self._make_basis()

    def _add(self, rows: Sequence[Any], fresh: set[int]) -> None:
        """Append ``rows``; the rows of their cases loaded before this refresh (not in ``fresh``) die."""
        self._times = None
        stale = {r.case_id for r in rows} - fresh
        fresh |= stale
        for cid in stale:
            for pos in self.rows_of.pop(cid, ()):
                if self.live[pos]:
                    self.live[pos] = False
                    self.live_count -= 1
        need = self.n + len(rows)
        if need > len(self.case):
            self._grow(max(need, int(len(self.case) * 1.25) + 1024))
        first = self.n
        for r in rows:
            i = self.n
            self.vecs[i] = _half_from_blob(r.vector, self.dim)
            self.case[i] = r.case_id
            self.kind[i] = _KIND_CODE.get(r.kind, 0)
            self.org[i] = self.code("org", r.org, add=True)
            self.team[i] = self.code("team", r.team, add=True)
            self.creator[i] = r.created_by
            self.product[i] = self.code("product", r.product, add=True)
            self.created[i] = r.created_at.timestamp() if r.created_at else 0.0
            self.live[i] = True
            self.rows_of.setdefault(int(r.case_id), []).append(i)
            self.n += 1
            self.live_count += 1
        self.last_id = max(self.last_id, rows[-1].id)
        if self.basis is not None:
            self._project(first, self.n)
        if self.n > 2 * max(self.live_count, 1024):
            self._compact()

    def _make_basis(self) -> None:
        """The projection's axes (from a sample of the live rows) and the projection of every row."""
        live = np.flatnonzero(self.live[:self.n])
        if live.size > _BASIS_SAMPLE:
            live = np.sort(np.random.default_rng(0).choice(live, _BASIS_SAMPLE, replace=False))
        x = self.vecs[live].astype(np.float64)
        _vals, vecs = np.linalg.eigh(x.T @ x)
        self.basis = np.ascontiguousarray(vecs[:, ::-1][:, :REDUCED_DIM], dtype=np.float32)
        self.blocks = [_Block() for _ in KINDS]
        for i in range(0, self.n, 50_000):
            self._project(i, min(i + 50_000, self.n))

    def _project(self, first: int, last: int) -> None:
        """Append the projections of rows ``first:last`` to their kinds' blocks."""
        red = self.vecs[first:last].astype(np.float32) @ self.basis
        kinds = self.kind[first:last]
        for code, block in enumerate(self.blocks):
            sel = np.flatnonzero(kinds == code)
            if sel.size:
                block.append(sel + first, red[sel])

    def _grow(self, cap: int) -> None:
        def grow(a: np.ndarray) -> np.ndarray:
            out = np.zeros((cap,) + a.shape[1:], dtype=a.dtype)
            out[:self.n] = a[:self.n]
            return out
        self.vecs, self.case, self.kind, self.org, self.team = map(grow, (self.vecs, self.case, self.kind,
                                                                            self.org, self.team))
        self.creator, self.product, self.created, self.live = map(grow, (self.creator, self.product,
                                                                          self.created, self.live))

    def _compact(self) -> None:
        keep = np.flatnonzero(self.live[:self.n])
        names = ("vecs", "case", "kind", "org", "team", "creator", "product", "created", "live")
        for name in names:
            setattr(self, name, getattr(self, name)[keep].copy())
        for block in self.blocks:
            block.keep(keep)
        self.n = len(keep)
        self.rows_of = {}
        for i, cid in enumerate(self.case.tolist()):
            self.rows_of.setdefault(cid, []).append(i)

    # ------------------------------------------------------------------ queries
    def vectors_of(self, case_id: int) -> dict[str, np.ndarray]:
        """The cached vectors of one case by kind."""
        with self._lock:
            return {KINDS[self.kind[i]]: self.vecs[i].astype(np.float32) for i in self.rows_of.get(case_id, ())
                    if self.live[i]}

    def created_of(self, case_id: int) -> float | None:
        with self._lock:
            rows = self.rows_of.get(case_id)
            return float(self.created[rows[0]]) if rows else None

    def _mask(self, flt: Filter) -> np.ndarray:
        n = self.n
        m = self.live[:n].copy()
        if flt.org is not None:
            m &= self.org[:n] == flt.org
        if flt.creator is not None:
            allowed = self.creator[:n] == flt.creator
            if flt.team is not None:
                allowed |= self.team[:n] == flt.team
            m &= allowed
        if flt.product is not None:
            m &= self.product[:n] == flt.product
        if flt.exclude_case is not None:
            m &= self.case[:n] != flt.exclude_case
        return m

    def search(self, lists: Sequence[tuple[Sequence[np.ndarray], Sequence[str]]], flt: Filter,
               limit: int) -> list[list[tuple[int, float]]]:
        """For each ``(query vectors, kinds)`` of ``lists``: ``(case_id, cosine)`` best first, for each
        case the best of its rows of those kinds against any of those vectors.

        Exact (one product with every row) below :data:`SHORTLIST_FROM` rows; above, each list's
        vectors are compared with the projection of its kinds' rows only (their blocks), and the
        :data:`SHORTLIST` best rows that pass the filter are compared again exactly.
        """
        cols: list[np.ndarray] = [np.asarray(q, dtype=np.float32) for qs, _k in lists for q in qs]
        if not cols:
            return [[] for _ in lists]
        with self._lock:
            n = self.n
            if n == 0:
                return [[] for _ in lists]
            mask = self._mask(flt)
            Q = np.stack(cols, axis=1)
            if self.basis is None:
                return self._search_exact(lists, Q, mask, limit)
            out: list[list[tuple[int, float]]] = []
            c = 0
            for qs, kinds in lists:
                cs = slice(c, c + len(qs))
                c += len(qs)
                if not qs:
                    out.append([])
                    continue
                scores, rows = self._projected(Q[:, cs], kinds, mask)
                take = min(int(np.isfinite(scores).sum()), max(SHORTLIST, limit * len(kinds) * 4))
                if take <= 0:
                    out.append([])
                    continue
                pick = np.argpartition(-scores, take - 1)[:take] if take < scores.size else np.arange(scores.size)
                rows = rows[pick[np.isfinite(scores[pick])]]
                with _one_blas_thread():
                    exact = (self.vecs[rows].astype(np.float32) @ Q[:, cs]).max(axis=1)
                out.append(self._top(exact, exact.size, limit, rows_per_case=len(kinds), rows=rows))
            return out

    def _projected(self, q: np.ndarray, kinds: Sequence[str], mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Projected scores (the best over the columns of ``q``; ``-inf`` where ``mask`` is false)
        of the rows of ``kinds``, and those rows' indices."""
        qp = self.basis.T @ q
        scores, rows = [], []
        for kind in dict.fromkeys(kinds):
            block = self.blocks[_KIND_CODE[kind]]
            if not block.n:
                continue
            r = block.rows[:block.n]
            with _one_blas_thread():
                # one column at a time: OpenBLAS's matrix-vector product is faster than its
                # matrix-matrix product with 2-3 columns (measured: 1.4 vs 2.3 ms for 100,000 rows)
                s = block.red[:block.n] @ qp[:, 0]
                for j in range(1, qp.shape[1]):
                    s = np.maximum(s, block.red[:block.n] @ qp[:, j])
            scores.append(np.where(mask[r], s, -np.inf))
            rows.append(r)
        if not rows:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        if len(rows) == 1:
            return scores[0], rows[0]
        return np.concatenate(scores), np.concatenate(rows)

    def _search_exact(self, lists: Sequence[tuple[Sequence[np.ndarray], Sequence[str]]], Q: np.ndarray,
                      mask: np.ndarray, limit: int) -> list[list[tuple[int, float]]]:
        n = self.n
        with _one_blas_thread():
            S = self.vecs[:n].astype(np.float32) @ Q
        out: list[list[tuple[int, float]]] = []
        c = 0
        for qs, kinds in lists:
            if not qs:
                out.append([])
                continue
            cs = slice(c, c + len(qs))
            c += len(qs)
            best = S[:, cs.start]
            for j in range(cs.start + 1, cs.stop):      # (faster than .max(axis=1) on a strided slice)
                best = np.maximum(best, S[:, j])
            ok = mask & (self.kind[:n] == _KIND_CODE[kinds[0]])
            for k in kinds[1:]:
                ok |= mask & (self.kind[:n] == _KIND_CODE[k])
            best = np.where(ok, best, -np.inf)
            out.append(self._top(best, int(ok.sum()), limit, rows_per_case=len(kinds)))
        return out

    def _top(self, best: np.ndarray, candidates: int, limit: int, *, rows_per_case: int,
             rows: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The ``limit`` best cases of the scores ``best`` (of the matrix rows ``rows``, or of all rows)."""
        take = min(candidates, limit * rows_per_case)
        if take <= 0:
            return []
        top = np.argpartition(-best, take - 1)[:take] if take < best.size else np.arange(best.size)
        top = top[np.argsort(-best[top], kind="stable")]
        found: dict[int, float] = {}
        for j in top.tolist():
            if best[j] == -np.inf:
                break
            cid = int(self.case[j if rows is None else rows[j]])
            if cid not in found:
                found[cid] = float(best[j])
                if len(found) >= limit:
                    break
        return list(found.items())

    def time_ranks(self, product: int | None, at: float, case_ids: Sequence[int]) -> dict[int, int]:
        """For each case, how many cases (of ``product``) were created closer to ``at`` (1 = closest)."""
        with self._lock:
            if self._times is None:
                self._times = {}
            key = product if product is not None else -2
            times = self._times.get(key)
            if times is None:
                sel = self.live[:self.n] & (self.kind[:self.n] == _KIND_CODE["full"])
                if product is not None:
                    sel &= self.product[:self.n] == product
                times = self._times[key] = np.sort(self.created[:self.n][sel])
            known = [(cid, rows[0]) for cid in case_ids if (rows := self.rows_of.get(cid))]
            if not known:
                return {}
            # one searchsorted per side for all cases (a Python loop of two calls per case cost
            # ~4 ms for the ~300 cases of a query's pool at 100,000 cases)
            d = np.abs(self.created[np.fromiter((r for _, r in known), dtype=np.int64, count=len(known))] - at)
            lo = np.searchsorted(times, at - d, side="left")
            hi = np.searchsorted(times, at + d, side="right")
            ranks = np.maximum(1, hi - lo - 1).tolist()
            return {cid: int(r) for (cid, _), r in zip(known, ranks)}

    def stats(self) -> dict[str, Any]:
        return {"rows": self.n, "live": self.live_count, "bytes": int(self.vecs.nbytes), "model": self.model}
