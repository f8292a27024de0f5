"""The lexical half on both backends.  PostgreSQL ranks by SQLite FTS5's BM25 (same formula, same
column weights) a shortlist of the cases holding the terms, taken by the summed idf of the terms
they hold: below the shortlist's size that is the same as ranking every case."""

from __future__ import annotations

import pytest
from sqlalchemy import text, true

from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.knowledge.similar import lexical

DOCS = [
    ("Gateway heap exhausted", "OutOfMemoryError in the gateway; heap dump shows sessions; heap again"),
    ("TLS handshake protocol_version alert", "clients on TLS 1.0 fail the handshake after the upgrade"),
    ("Gateway crashes in the TLS layer", "the gateway process aborts while the handshake runs"),
    ("Export date format wrong", "CSV exports use month/day; the gateway is not involved"),
    ("Sessions pile up", "session objects are never freed: heap grows until OutOfMemoryError"),
]
WORDS = ["gateway", "heap", "handshake", "outofmemoryerror", "sessions", "tls"]


@pytest.fixture
def hub(engine, tmp_path):
    hub = Hub.build(engine, blob_root=tmp_path / "blobs")
    sam = hub.users.add("sam", Role.SUPPORT, team="emea")[0]
    for title, desc in DOCS:
        hub.cases.create(sam, NewCase(title, "gateway", "7.2", "acme", CaseSeverity.S2, {"symptoms": desc}))
    hub.similar.indexer.run_pending()
    return hub


def test_rank_order_and_only_matching_cases(hub):
    idf = {w: 1.0 + i / 10 for i, w in enumerate(WORDS)}
    with hub.engine.connect() as conn:
        got = lexical.search(conn, ["heap", "outofmemoryerror"], idf, where=true(), staff=True, limit=10)
        titles = dict(conn.execute(text("SELECT id, title FROM cases")).all())
    assert {titles[c] for c, _ in got} == {"Gateway heap exhausted", "Sessions pile up"}
    assert [s for _, s in got] == sorted((s for _, s in got), reverse=True) and all(s > 0 for _, s in got)
    assert titles[got[0][0]] == "Gateway heap exhausted"          # the title term and two heaps


def _build(engine, tmp_path) -> Hub:
    hub = Hub.build(engine, blob_root=tmp_path / "blobs")
    sam = hub.users.add("sam", Role.SUPPORT, team="emea")[0]
    for title, desc in DOCS + EXTRA:
        case = hub.cases.create(sam, NewCase(title, "gateway", "7.2", "acme", CaseSeverity.S2, {"symptoms": desc}))
        if "session" in desc:
            hub.cases.add_note(sam, case.key, "internal: the session_cache heap leak again, heap heap")
    hub.similar.indexer.run_pending()
    return hub


#: more cases, so that BM25's idf is positive for the common terms too (FTS5 floors it at 1e-6)
EXTRA = [(f"Unrelated report {i}", f"printer queue stalls on page {i}; spooler restarted") for i in range(12)]
QUERIES = [["heap", "outofmemoryerror"], ["gateway", "heap", "handshake", "session_cache", "tls"],
           ["gateway", "tls", "handshake", "printer"], ["session_cache", "sessions", "heap"]]


@pytest.fixture
def both(tmp_path, sqlite_template):
    """The same handmade cases in SQLite and in a PostgreSQL schema of its own (dropped after)."""
    import secrets
    import shutil

    from sqlalchemy import create_engine

    from backline.storage.db import make_engine, upgrade
    from backline.storage.testdb import PG_URL
    path = tmp_path / "lite.db"
    shutil.copy(sqlite_template, path)
    lite = make_engine(f"sqlite:///{path}")
    name = f"bl_pgrank_{secrets.token_hex(4)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{name}"'))
    pg = make_engine(PG_URL, schema=name)
    try:
        upgrade(pg)
        yield _build(lite, tmp_path / "lite"), _build(pg, tmp_path / "pg")
    finally:
        lite.dispose()
        pg.dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("staff", [True, False])
def test_postgresql_bm25_is_sqlite_bm25(both, staff):
    """The same cases, the same query terms: PostgreSQL ranks them in SQLite FTS5's order with
    FTS5's scores (title weighs 2, internal notes count for staff only, phrase terms like
    ``session_cache``), over every matching case and over a shortlist of 3."""
    lite, pg = both
    idf = dict.fromkeys(WORDS + ["session_cache", "printer"], 1.0)   # BM25 takes no idf from outside
    for words in QUERIES:
        with lite.engine.connect() as c:
            want = lexical.search(c, words, idf, where=true(), staff=staff, limit=50)
        with pg.engine.connect() as c:
            got = lexical.search(c, words, idf, where=true(), staff=staff, limit=50)
            short = lexical._search_pg(c, words, idf, where=true(), staff=staff, limit=50,
                                       weights=lexical.LexicalWeights(), shortlist=3)
        assert len(want) >= 2, words
        assert [cid for cid, _ in got] == [cid for cid, _ in want], words
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-9), words
        ref = dict(want)
        assert {cid: s for cid, s in short} == pytest.approx({cid: ref[cid] for cid, _ in short}, rel=1e-9)
        assert len(short) == min(3, len(want))
    # a term in internal notes only ranks nothing for a customer-facing (non-staff) search
    with pg.engine.connect() as c:
        leak = lexical.search(c, ["leak"], idf, where=true(), staff=staff, limit=50)
    assert bool(leak) == staff


def test_phrase_count_and_idf_floor():
    toks = ["foo", "bar", "foo", "bar", "bar"]
    assert lexical.phrase_count(toks, ["bar"]) == 3
    assert lexical.phrase_count(toks, ["foo", "bar"]) == 2
    assert lexical.phrase_count(toks, ["bar", "bar"]) == 1
    assert lexical.bm25_idf(10, 9) == 1e-6 and lexical.bm25_idf(10, 1) > 1.0


def test_fts_tokens_fast_path_is_the_regular_expression():
    """The split fast path for the indexer's own text gives FTS5's tokens exactly, and any other text
    (capitals, punctuation, non-ASCII) goes through the regular expression."""
    import random
    import re

    from backline.knowledge.similar.text import fts_tokens, terms
    regex = re.compile(r"[a-z0-9]+")
    rng = random.Random(4)
    alphabet = "abcxyz019_ _ "
    for _ in range(500):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        assert fts_tokens(s) == regex.findall(s), s
    for s in ("Foo_bar baz", "a-b c.d", "naïve café x1", " __init__  x", terms("NativeAzureFs close() v1.2")):
        s = s if isinstance(s, str) else " ".join(s)
        assert fts_tokens(s) == regex.findall(s), s


@pytest.mark.postgres
def test_postgresql_filters_on_the_facts_case_fts_carries(both):
    """The product / visibility filter on PostgreSQL reads the facts copied into ``case_fts``
    (revision 0011); a later change of a case's product, organisation or team reaches them (trigger
    on ``cases``), so both backends return the same cases in the same order under every filter."""
    from sqlalchemy import and_, or_, update

    from backline.storage import tables as T
    lite, pg = both
    idf = dict.fromkeys(WORDS + ["session_cache", "printer"], 1.0)
    for hub in both:
        with hub.engine.begin() as c:
            ids = [r for (r,) in c.execute(text("SELECT id FROM cases ORDER BY id"))]
            c.execute(update(T.cases).where(T.cases.c.id.in_(ids[::2])).values(product="portal"))
            c.execute(update(T.cases).where(T.cases.c.id.in_(ids[::3])).values(org="globex", team=None))
    C = T.cases.c
    filters = [and_(C.product == "portal"), and_(C.org == "globex", C.product == "gateway"),
               or_(C.team == "emea", C.created_by == -1), and_(C.product == "portal", C.id != ids[2])]
    for where in filters:
        for words in QUERIES:
            with lite.engine.connect() as c:
                want = lexical.search(c, words, idf, where=where, staff=True, limit=50)
            with pg.engine.connect() as c:
                got = lexical.search(c, words, idf, where=where, staff=True, limit=50)
                allowed = {r for (r,) in c.execute(select_ids(where))}
            assert [cid for cid, _ in got] == [cid for cid, _ in want], (str(where), words)
            assert {cid for cid, _ in got} <= allowed
    with pg.engine.connect() as c:
        facts = dict(c.execute(text("SELECT case_id, product FROM case_fts")).all())
    assert {facts[i] for i in ids[::2]} == {"portal"} and "gateway" in facts.values()


def select_ids(where):
    from sqlalchemy import select

    from backline.storage import tables as T
    return select(T.cases.c.id).where(where)
