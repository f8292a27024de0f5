"""The lexical half on both backends.  PostgreSQL ranks by the full formula (each term's ts_rank
times its idf) only a shortlist of the cases holding the terms, taken by the summed idf of the
terms they hold: below the shortlist's size that is the same as ranking every case."""

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


def test_postgresql_scores_equal_every_term_over_every_candidate(hub):
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("the PostgreSQL ranking only")
    idf = {w: 1.0 + i / 10 for i, w in enumerate(WORDS)}
    with hub.engine.connect() as conn:
        got = dict(lexical.search(conn, WORDS, idf, where=true(), staff=True, limit=10))
        # the reference: the formula before, each term's ts_rank for every case holding any term
        lw = "'{0.1, 0.2, 0.5, 1.0}'::float4[]"
        parts = " + ".join(f"ts_rank({lw}, tsv, to_tsquery('simple', '{w}'), 1) * {idf[w]}"
                           f" + ts_rank(tsv_internal, to_tsquery('simple', '{w}'), 1) * {idf[w]}" for w in WORDS)
        anyq = " | ".join(WORDS)
        ref = dict(conn.execute(text(
            f"SELECT case_id, {parts} FROM case_fts WHERE tsv @@ to_tsquery('simple', '{anyq}') "
            f"OR tsv_internal @@ to_tsquery('simple', '{anyq}')")).all())
    assert len(got) == len(ref) == 5
    assert got == pytest.approx(ref, rel=1e-5)
    # a shortlist of 2: the two cases holding the most (idf-weighted) terms, ranked by the formula
    held = {cid: 0.0 for cid in ref}
    with hub.engine.connect() as conn:
        for w in WORDS:
            for (cid,) in conn.execute(text(f"SELECT case_id FROM case_fts WHERE tsv @@ to_tsquery('simple', '{w}')")):
                held[cid] += idf[w]
        short = lexical._search_pg(conn, WORDS, idf, where=true(), staff=True, limit=10,
                                   weights=lexical.LexicalWeights(), shortlist=2)
    best_two = sorted(held, key=lambda c: (-held[c], c))[:2]
    assert sorted(c for c, _ in short) == sorted(best_two)
    assert dict(short) == pytest.approx({c: ref[c] for c in best_two}, rel=1e-5)
