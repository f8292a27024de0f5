"""The in-memory copy of ``case_vectors``: topped up incrementally, reloaded when out of step, filtered."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import delete, insert, select

from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.knowledge.similar import dense
from backline.knowledge.similar.dense import Filter, VectorCache, from_blob, to_blob
from backline.storage import tables as T


def unit(*xs):
    v = np.zeros(4, dtype=np.float32)
    v[:len(xs)] = xs
    return v / np.linalg.norm(v)


@pytest.fixture
def world(engine, tmp_path):
    hub = Hub.build(engine, blob_root=tmp_path / "b")
    sam, _ = hub.users.add("sam", Role.SUPPORT, team="emea")
    ids = {}
    for name, org, product in (("a", "acme", "gw"), ("b", "globex", "gw"), ("c", "acme", "portal")):
        ids[name] = hub.cases.create(sam, NewCase(name, product, "1", org, CaseSeverity.S3, {})).id
    return hub, ids


def put(conn, cid, vec, kind="full"):
    conn.execute(insert(T.case_vectors).values(case_id=cid, kind=kind, model="m", dim=4, vector=to_blob(vec),
                                               content_hash="h"))


def test_top_up_replace_filter_and_reload(world, monkeypatch):
    hub, ids = world
    with hub.engine.begin() as conn:
        put(conn, ids["a"], unit(1, 0))
        put(conn, ids["b"], unit(1, 0.2))
        put(conn, ids["c"], unit(0, 1))
        put(conn, ids["c"], unit(1, 0), kind="title")
    cache = VectorCache("m", 4)
    with hub.engine.connect() as conn:
        cache.refresh(conn)
    assert cache.live_count == 4
    q = unit(1, 0)
    full = [([q], ["full"])]
    assert [c for c, _ in cache.search(full, Filter(), 10)[0]] == [ids["a"], ids["b"], ids["c"]]
    acme = Filter(org=cache.code("org", "acme"))
    assert [c for c, _ in cache.search(full, acme, 10)[0]] == [ids["a"], ids["c"]]
    gw = Filter(product=cache.code("product", "gw"), exclude_case=ids["a"])
    assert [c for c, _ in cache.search(full, gw, 10)[0]] == [ids["b"]]
    assert cache.search(full, Filter(org=cache.code("org", "initech")), 10)[0] == []
    assert [c for c, _ in cache.search([([q], ["title"])], Filter(), 10)[0]] == [ids["c"]]
    # kept float16 as stored (half the memory of float32, nothing lost), handed out as float32
    assert cache.vecs.dtype == np.float16
    got = cache.vectors_of(ids["b"])["full"]
    assert got.dtype == np.float32 and np.array_equal(got, from_blob(to_blob(unit(1, 0.2)), 4))

    # c is re-indexed: its rows are replaced, the copy follows with one small load
    with hub.engine.begin() as conn:
        conn.execute(delete(T.case_vectors).where(T.case_vectors.c.case_id == ids["c"]))
        put(conn, ids["c"], unit(1, 0.01))
    with hub.engine.connect() as conn:
        cache.refresh(conn)
    assert cache.live_count == 3
    assert [c for c, _ in cache.search(full, Filter(), 10)[0]][:2] == [ids["a"], ids["c"]]

    # rows removed without new ones (or committed out of id order): the periodic count check reloads
    with hub.engine.begin() as conn:
        conn.execute(delete(T.case_vectors).where(T.case_vectors.c.case_id == ids["b"]))
    monkeypatch.setattr(dense, "FULL_CHECK_SECONDS", 0.0)
    with hub.engine.connect() as conn:
        cache.refresh(conn)
    assert cache.live_count == 2
    assert ids["b"] not in [c for c, _ in cache.search(full, Filter(), 10)[0]]


def test_time_ranks_count_cases_filed_closer(world):
    hub, ids = world
    with hub.engine.begin() as conn:
        for cid in ids.values():
            put(conn, cid, unit(1))
        created = dict(conn.execute(select(T.cases.c.id, T.cases.c.created_at)).all())
    cache = VectorCache("m", 4)
    with hub.engine.connect() as conn:
        cache.refresh(conn)
    at = created[ids["a"]].timestamp()
    ranks = cache.time_ranks(cache.code("product", "gw"), at, [ids["a"], ids["b"]])
    assert ranks[ids["a"]] == 1 and ranks[ids["b"]] >= 1


class _Rows:
    """What ``VectorCache._load`` reads, without a database (thousands of rows in milliseconds)."""

    def __init__(self, rows):
        self.rows = rows

    def execute(self, _q):
        return self

    def all(self):
        return self.rows

    def scalar_one(self):
        return len(self.rows)


def _fake_rows(vectors, first_id=1, case_of=lambda i: i // 2 + 1):
    from datetime import datetime, timezone
    from types import SimpleNamespace
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [SimpleNamespace(id=first_id + i, case_id=case_of(i), kind=("full", "title")[i % 2], vector=to_blob(v),
                            dim=v.size, org="acme", team=None, created_by=1, product="gw", created_at=at)
            for i, v in enumerate(vectors)]


def test_the_projected_search_finds_what_the_exact_product_finds(monkeypatch):
    monkeypatch.setattr(dense, "SHORTLIST_FROM", 1000)
    monkeypatch.setattr(dense, "REDUCED_DIM", 16)
    monkeypatch.setattr(dense, "SHORTLIST", 400)
    monkeypatch.setattr(dense, "_BASIS_SAMPLE", 1500)
    rng = np.random.default_rng(1)
    dim = 64
    centres = rng.standard_normal((40, dim))                      # topics, as real texts have
    vecs = centres[rng.integers(0, 40, 4000)] + 0.6 * rng.standard_normal((4000, dim))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    exact, projected = VectorCache("m", dim), VectorCache("m", dim)
    monkeypatch.setattr(dense, "SHORTLIST_FROM", 10 ** 9)
    exact._load(_Rows(_fake_rows(vecs)), 0)
    assert exact.basis is None
    monkeypatch.setattr(dense, "SHORTLIST_FROM", 1000)
    projected._load(_Rows(_fake_rows(vecs[:800])), 0)              # exact while small ...
    assert projected.basis is None
    projected._load(_Rows(_fake_rows(vecs[800:], first_id=801, case_of=lambda i: (i + 800) // 2 + 1)), 800)
    assert projected.basis is not None and projected.basis.shape == (dim, 16)   # ... projected once large
    overlap, same_top = [], 0
    for q in vecs[rng.integers(0, 4000, 30)]:
        lists = [([q], ["full"]), ([q], ["title"])]
        a = exact.search(lists, Filter(), 100)
        b = projected.search(lists, Filter(), 100)
        for x, y in zip(a, b):
            overlap.append(len({c for c, _ in x} & {c for c, _ in y}) / len(x))
            same_top += [c for c, _ in x[:10]] == [c for c, _ in y[:10]]
            # the cosines shown are exact, not projected
            assert all(abs(dict(x)[c] - s) < 1e-5 for c, s in y if c in dict(x))
    assert np.mean(overlap) >= 0.95 and same_top >= 0.9 * len(overlap), (np.mean(overlap), same_top)
    # a case re-embedded after the projection exists replaces its rows and is found by its new vector
    new = np.zeros(dim, dtype=np.float32)
    new[0] = 1.0
    projected._load(_Rows(_fake_rows([new, new], first_id=5000, case_of=lambda i: 7)), 4000)
    assert projected.search([([new], ["full"])], Filter(), 1)[0][0] == (7, pytest.approx(1.0, abs=1e-3))
    assert projected.search([([new], ["full"])], Filter(exclude_case=7), 5)[0][0][0] != 7


def test_time_ranks_are_the_count_of_cases_filed_closer():
    """Against a brute-force count: for each case, the cases of the product filed closer to the query
    time than it (itself excluded), at least 1."""
    from datetime import datetime, timedelta, timezone
    from types import SimpleNamespace
    rng = np.random.default_rng(3)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    minutes = rng.integers(0, 60 * 24 * 365, 500)
    rows = [SimpleNamespace(id=i + 1, case_id=i + 1, kind="full", vector=to_blob(unit(1)), dim=4, org="acme",
                            team=None, created_by=1, product=("gw", "portal")[i % 3 == 0],
                            created_at=start + timedelta(minutes=int(m))) for i, m in enumerate(minutes)]
    cache = VectorCache("m", 4)
    cache._load(_Rows(rows), 0)
    created = {r.case_id: r.created_at.timestamp() for r in rows}
    gw = [r.case_id for r in rows if r.product == "gw"]
    at = (start + timedelta(days=100)).timestamp()
    asked = [int(c) for c in rng.choice(gw, 60, replace=False)] + [10_000]      # 10_000: no such case
    ranks = cache.time_ranks(cache.code("product", "gw"), at, asked)
    assert set(ranks) == set(asked[:-1])
    for cid in asked[:-1]:
        d = abs(created[cid] - at)
        closer = sum(1 for o in gw if abs(created[o] - at) <= d) - 1
        assert ranks[cid] == max(1, closer)


def test_projection_blocks_follow_compaction(monkeypatch):
    """Re-embedded cases leave dead rows; once compacted, the per-kind projection blocks point at the
    renumbered rows, and the two-step search still finds what the exact product finds."""
    monkeypatch.setattr(dense, "SHORTLIST_FROM", 500)
    monkeypatch.setattr(dense, "REDUCED_DIM", 16)
    monkeypatch.setattr(dense, "SHORTLIST", 300)
    monkeypatch.setattr(dense, "_BASIS_SAMPLE", 1000)
    rng = np.random.default_rng(5)
    dim = 32
    centres = rng.standard_normal((20, dim))

    def sample(k):
        v = centres[rng.integers(0, 20, k)] + 0.5 * rng.standard_normal((k, dim))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    cache = VectorCache("m", dim)
    cache._load(_Rows(_fake_rows(sample(1200))), 0)               # cases 1..600, full + title each
    assert cache.basis is not None
    assert [b.n for b in cache.blocks] == [600, 600, 0]
    # every case re-embedded twice: more dead rows than live ones, so the cache compacts
    last = 1200
    for _round in range(2):
        cache._load(_Rows(_fake_rows(sample(1200), first_id=last + 1)), last)
        last += 1200
    assert cache.n == 1200 and cache.live_count == 1200
    assert [b.n for b in cache.blocks] == [600, 600, 0]
    for code, block in enumerate(cache.blocks[:2]):
        assert (cache.kind[block.rows[:block.n]] == code).all()
    live = cache.vecs[:cache.n].astype(np.float32)
    for q in sample(20):
        for kind, code in (("full", 0), ("title", 1)):
            got = cache.search([([q], [kind])], Filter(), 20)[0]
            s = np.where(cache.kind[:cache.n] == code, live @ q, -np.inf)
            want = [int(cache.case[j]) for j in np.argsort(-s)[:20]]
            assert len(set(c for c, _ in got) & set(want)) >= 18
            assert got[0][0] == want[0]
