"""The in-memory copy of ``case_vectors``: topped up incrementally, reloaded when out of step, filtered."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import delete, insert, select

from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.knowledge.similar import dense
from backline.knowledge.similar.dense import Filter, VectorCache, to_blob
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
