"""The lexical index in memory ranks exactly as SQLite FTS5's ``bm25()`` statement (same cases, same
order, the same scores to the last bit) on both backends, and follows every write at the next query:
new cases, edited titles and notes, in this process and from another one."""

from __future__ import annotations

import pytest
from sqlalchemy import and_, text, true

from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.knowledge.similar import lexical
from backline.knowledge.similar.lexindex import LexicalIndex, exact_weights
from backline.knowledge.similar.service import SimilarService
from backline.storage import tables as T

from .test_lexical import DOCS, EXTRA, QUERIES, WORDS, both  # noqa: F401  (``both``: a fixture)

IDF = dict.fromkeys(WORDS + ["session_cache", "printer"], 1.0)     # BM25 takes no idf from outside
#: phrases across and within words, a term only in internal notes, terms no case has
MORE_QUERIES = QUERIES + [["session_cache"], ["cache", "session"], ["leak"], ["heap_heap", "spooler"],
                          ["nothing_here", "zzz"], ["page", "queue", "stalls", "printer", "restarted"]]


def _cases(hub: Hub, extra: list[tuple[str, str]] = ()) -> list[str]:
    sam = hub.users.add("sam", Role.SUPPORT, team="emea")[0]
    keys = []
    for i, (title, desc) in enumerate(list(DOCS + EXTRA) + list(extra)):
        case = hub.cases.create(sam, NewCase(title, "gateway" if i % 3 else "portal", "7.2", "acme",
                                             CaseSeverity.S2, {"symptoms": desc}))
        if "session" in desc:
            hub.cases.add_note(sam, case.key, "internal: the session_cache heap leak again, heap heap")
        keys.append(case.key)
    hub.similar.indexer.run_pending()
    return keys


def _filters(conn):
    C = T.cases.c
    ids = [r for (r,) in conn.execute(text("SELECT id FROM cases ORDER BY id"))]
    return [true(), C.product == "gateway", and_(C.product == "portal", C.id != ids[0]), C.id == -1]


def _compare(ref_hub: Hub, hub: Hub, index: LexicalIndex, *, queries=MORE_QUERIES) -> int:
    """Memory (on ``hub``) against FTS5 (on ``ref_hub``, SQLite): equal lists for every query,
    staff or not, under every filter; returns how many lists were compared that were not empty."""
    compared = 0
    for staff in (True, False):
        for words in queries:
            with ref_hub.engine.connect() as c:
                wheres = _filters(c)
            for k, where in enumerate(wheres):
                with ref_hub.engine.connect() as c:
                    want = lexical.search(c, words, IDF, where=_filters(c)[k], staff=staff, limit=50)
                with hub.engine.connect() as c:
                    got = lexical.search(c, words, IDF, where=_filters(c)[k], staff=staff, limit=50,
                                         index=index)
                assert got == want, (words, staff, k)          # ids, order and scores, exactly
                compared += bool(want)
    return compared


@pytest.mark.parametrize("chunk", [5000, 4])
def test_memory_ranks_as_fts5_on_sqlite(sqlite_template, tmp_path, monkeypatch, chunk):
    """(PostgreSQL: the next test, against the same cases in SQLite.)  Built in one chunk and in
    chunks of 4 cases (some with internal notes, some without: their counts are assembled)."""
    import shutil

    from backline.knowledge.similar import lexindex
    monkeypatch.setattr(lexindex, "LOAD_CHUNK", chunk)
    from backline.storage.db import make_engine
    shutil.copy(sqlite_template, tmp_path / "lite.db")
    hub = Hub.build(make_engine(f"sqlite:///{tmp_path / 'lite.db'}"), blob_root=tmp_path / "blobs")
    # ties: the same text twice (equal scores are ordered by case id, as SQLite's sort leaves them)
    _cases(hub, [("Printer queue stalls", "spooler restarted on page 3")] * 3)
    index = LexicalIndex()
    assert _compare(hub, hub, index) >= 40
    assert index.builds == 1 and index.stats()["cases"] == len(DOCS + EXTRA) + 3


@pytest.mark.postgres
def test_memory_on_postgresql_ranks_as_sqlite_fts5(both):  # noqa: F811
    """The same cases in both databases: the in-memory ranking over PostgreSQL's ``case_search``
    equals SQLite's FTS5 statement exactly (PostgreSQL's own path ranks a shortlist)."""
    lite, pg = both
    assert _compare(lite, pg, LexicalIndex()) >= 30


def test_the_index_follows_writes_here_and_in_another_process(engine, tmp_path):
    """Writes reach the in-memory index at the next query: a new case, an edited title, a new
    internal note, made through this process or another one (another Hub on the same database),
    and past ``overlay_max`` changed cases it is rebuilt; every list stays the database's own."""
    hub = Hub.build(engine, blob_root=tmp_path / "blobs")
    other = Hub.build(engine, blob_root=tmp_path / "blobs2")      # "another process"
    keys = _cases(hub)
    index = hub.similar.lexindex
    ref = SimilarService(hub.cases, hub.similar.indexer, lexical_in_memory=False)
    assert ref.lexindex is None

    def check(words, staff=True):
        with hub.engine.connect() as c:
            want = lexical.search(c, words, IDF, where=true(), staff=staff, limit=50)
            got = lexical.search(c, words, IDF, where=true(), staff=staff, limit=50, index=index)
        if engine.dialect.name == "sqlite":
            assert got == want, words
        else:   # PostgreSQL's own path is the same BM25 in another order of operations (1e-15 apart)
            assert [cid for cid, _ in got] == [cid for cid, _ in want], words
            assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-12), words
        return [cid for cid, _ in got]

    assert not check(["reconciliation"])
    builds = index.builds
    sam = other.users.get("sam")
    new = other.cases.create(sam, NewCase("Invoice reconciliation hangs", "gateway", "7.2", "acme",
                                          CaseSeverity.S2, {"symptoms": "the reconciliation batch hangs"}))
    other.similar.indexer.run_pending()
    new_id = other.cases.get(sam, new.key).id
    assert check(["reconciliation"]) == [new_id]
    other.cases.update(sam, keys[3], {"title": "Reconciliation export in the wrong date format"})
    other.similar.indexer.run_pending()
    assert set(check(["reconciliation"])) == {new_id, other.cases.get(sam, keys[3]).id}
    hub.cases.add_note(sam, keys[4], "internal: kiosk printer firmware quirk", "internal")
    hub.similar.indexer.run_pending()
    assert other.cases.get(sam, keys[4]).id in check(["quirk"])
    assert not check(["quirk"], staff=False)                       # internal notes: staff only
    assert index.builds == builds and index.stats()["changed"] == 3
    # past overlay_max changed cases: rebuilt at the next query, still the same lists
    index.overlay_max = 2
    other.cases.update(sam, keys[0], {"title": "Gateway heap exhausted again, reconciliation too"})
    other.similar.indexer.run_pending()
    check(["reconciliation"])
    assert index.builds == builds + 1 and index.stats()["changed"] == 0
    for words in MORE_QUERIES + [["reconciliation", "quirk", "kiosk"]]:
        check(words)
        check(words, staff=False)


def test_for_case_top_10_is_the_database_paths(engine, tmp_path):
    """Through the whole service (lexical + dense + title + time, fused): the same hits and scores
    with the in-memory lexical index as with the database's full-text index, for each role."""
    hub = Hub.build(engine, blob_root=tmp_path / "blobs")
    keys = _cases(hub)
    users = [hub.users.add("erin", Role.ENGINEER)[0], hub.users.get("sam"),
             hub.users.add("carl", Role.CUSTOMER, org="acme")[0]]
    ref = SimilarService(hub.cases, hub.similar.indexer, lexical_in_memory=False)
    seen = 0
    for user in users:
        for key in keys:
            for any_product in (False, True):
                got = hub.similar.for_case(user, key, limit=10, any_product=any_product)
                want = ref.for_case(user, key, limit=10, any_product=any_product)
                assert [(h.key, h.score, h.why) for h in got] == [(h.key, h.score, h.why) for h in want]
                seen += len(got)
    assert seen > 100 and hub.similar.lexindex.builds == 1


def test_weights_that_do_not_add_up_exactly_go_to_the_database():
    assert exact_weights(2.0, 1.0, 1.0) and exact_weights(0.5, 1.5, 0.0)
    assert not exact_weights(0.1, 1.0, 1.0)
    index = LexicalIndex()
    index.rev = 0                 # an empty, loaded copy
    assert index.rank(["heap"], staff=True, title=0.1, body=1.0, internal=1.0) is None
    assert index.rank(["__"], staff=True, title=2.0, body=1.0, internal=1.0) is None   # no token
    cases, scores = index.rank(["heap"], staff=True, title=2.0, body=1.0, internal=1.0)
    assert cases.size == 0 and scores.size == 0
