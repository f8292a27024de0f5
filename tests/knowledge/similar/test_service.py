"""Similar past cases through the service, on SQLite and PostgreSQL: ranking, permissions,
the index following the cases, crash signatures."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from backline.cases.evidence import JobRunner
from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Role
from backline.cases.service import NewCase
from backline.errors import CaseError, NotFound
from backline.knowledge.similar.index import enqueue
from backline.model.core import AnalysisResult, Finding, Severity
from backline.storage import tables as T

CASES = [  # title, org, description
    ("Gateway runs out of memory under load", "acme",
     "After two hours of traffic the gateway dies with java.lang.OutOfMemoryError: Java heap space."),
    ("Java heap exhausted in the gateway after a few hours", "globex",
     "OutOfMemoryError (Java heap space) in the gateway JVM; the heap dump shows session objects piling up."),
    ("TLS handshake fails with a protocol_version alert", "acme",
     "Clients still on TLS 1.0 cannot connect after the upgrade; the server answers protocol_version."),
    ("Printer driver installation question", "acme",
     "The customer asks which printer driver to install on the kiosk machines."),
    ("Reports are exported with the wrong date format", "acme",
     "CSV exports use month/day instead of day/month since the last release."),
]


@pytest.fixture
def world(engine, tmp_path):
    hub = Hub.build(engine, blob_root=tmp_path / "blobs")
    users = {"erin": hub.users.add("erin", Role.ENGINEER)[0],
             "sam": hub.users.add("sam", Role.SUPPORT, team="emea")[0],
             "sue": hub.users.add("sue", Role.SUPPORT, team="apac")[0],
             "carl": hub.users.add("carl", Role.CUSTOMER, org="acme")[0],
             "olga": hub.users.add("olga", Role.CUSTOMER, org="globex")[0]}
    keys = []
    for title, org, desc in CASES:
        keys.append(hub.cases.create(users["sam"], NewCase(title, "gateway", "7.2", org, CaseSeverity.S2,
                                                           {"symptoms": desc})).key)
    other = hub.cases.create(users["sam"], NewCase("Gateway OutOfMemoryError Java heap space", "portal", "1.0",
                                                   "acme", CaseSeverity.S3, {"symptoms": "heap space"})).key
    hub.similar.indexer.run_pending()
    return hub, users, keys, other


def _keys(hits):
    return [h.key for h in hits]


def test_the_duplicate_comes_first_and_never_the_case_itself(world):
    hub, u, keys, other = world
    hits = hub.similar.for_case(u["erin"], keys[0])
    assert hits[0].key == keys[1]
    assert keys[0] not in _keys(hits)
    assert other not in _keys(hits)                       # another product, unless asked
    assert other in _keys(hub.similar.for_case(u["erin"], keys[0], any_product=True))
    j = hits[0].to_json()
    assert {"key", "external_id", "title", "score", "why"} <= set(j) and j["external_id"] is None
    assert any("shared terms" in w for w in j["why"]) and any("cosine" in w for w in j["why"])
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_a_customer_never_sees_another_organisations_cases(world):
    hub, u, keys, _ = world
    for hits in (hub.similar.for_case(u["carl"], keys[0]),
                 hub.similar.for_text(u["carl"], "gateway OutOfMemoryError Java heap space", product="gateway")):
        assert keys[1] not in _keys(hits)                 # globex's duplicate
        assert all(hub.cases.get(u["erin"], k).org == "acme" for k in _keys(hits))
    assert keys[1] in _keys(hub.similar.for_text(u["olga"], "gateway OutOfMemoryError Java heap", product="gateway"))
    with pytest.raises(NotFound):
        hub.similar.for_case(u["olga"], keys[0])          # not theirs: the same answer as absent
    # support: their own cases and their team's only
    assert hub.similar.for_text(u["sue"], "gateway OutOfMemoryError Java heap space") == []


def test_internal_notes_count_for_staff_only(world):
    hub, u, keys, _ = world
    hub.cases.add_note(u["erin"], keys[3], "Root cause: the zorblax flux capacitor overheats in the kiosk",
                       "internal")
    hub.similar.indexer.run_pending()
    q = "zorblax flux capacitor overheating"
    assert keys[3] in _keys(hub.similar.for_text(u["erin"], q, product="gateway"))
    assert keys[3] not in _keys(hub.similar.for_text(u["carl"], q, product="gateway"))


def test_the_index_follows_title_edits_and_notes(world):
    hub, u, keys, _ = world
    q = "quarterly invoice reconciliation batch hangs"
    assert keys[4] not in _keys(hub.similar.for_text(u["erin"], q, product="gateway"))
    hub.cases.update(u["sam"], keys[4], {"title": "Quarterly invoice reconciliation batch hangs"})
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(T.similar_queue)).scalar_one() == 1
    assert hub.similar.indexer.run_pending() == 1
    assert _keys(hub.similar.for_text(u["erin"], q, product="gateway"))[0] == keys[4]
    hub.cases.add_note(u["carl"], keys[2], "We also see SSLv3 clients refused", "public")
    assert hub.similar.indexer.pending() == 1
    hub.similar.indexer.run_pending()
    with hub.engine.connect() as conn:
        body = conn.execute(select(T.case_search.c.body_terms).join(T.cases, T.cases.c.id == T.case_search.c.case_id)
                            .where(T.cases.c.key == keys[2])).scalar_one()
    assert "sslv3" in body.split()


def test_a_change_during_indexing_is_not_lost(world):
    hub, u, keys, _ = world
    idx = hub.similar.indexer
    cid = hub.cases.get(u["erin"], keys[0]).id
    with hub.engine.begin() as conn:
        enqueue(conn, cid, "test", hub.clock())
    with hub.engine.connect() as conn:
        first = conn.execute(select(func.max(T.similar_queue.c.id))).scalar_one()
    with hub.engine.begin() as conn:
        enqueue(conn, cid, "test", hub.clock())          # arrives while the first is being embedded
    from backline.knowledge.similar.index import load_docs
    with hub.engine.connect() as conn:
        docs = load_docs(conn, [cid])
    idx.write(docs, queue_upto={cid: first})
    assert idx.pending() == 1


def test_same_crash_signature_is_a_strong_signal(world, tmp_path):
    hub, u, keys, _ = world
    sig = "libfoo.so@0x1a2b | render_frame"

    def analyze(paths, _options):
        f = Finding("DUMP.CRASH", "Access violation in render_frame", Severity.HIGH, str(paths[0]),
                    data={"signature": sig, "bucket_id": "AV_NULL_render_frame"})
        return AnalysisResult(inputs=(str(paths[0]),), artifacts=(), runs=(), findings=(f,), events=(), facts=())

    for key in (keys[3], keys[4]):                        # printer question, date format: unrelated text
        hub.evidence.upload(u["sam"], key, "app.dmp", io.BytesIO(b"MDMP fake"))
    runner = JobRunner(hub.cases, hub.store, analyze=analyze, options_factory=lambda w, s: None,
                       work_root=tmp_path)
    assert runner.run_pending() == 2
    assert hub.similar.indexer.run_pending() == 2        # findings stored -> re-indexed
    hits = hub.similar.for_case(u["erin"], keys[3])
    assert hits[0].key == keys[4]
    assert hits[0].why[0] == f"same crash signature: {sig}"
    assert "same crash bucket: AV_NULL_render_frame" in hits[0].why


def test_bad_queries_are_case_errors(world):
    hub, u, keys, _ = world
    with pytest.raises(CaseError):
        hub.similar.for_case(u["erin"], keys[0], limit=0)
    with pytest.raises(CaseError):
        hub.similar.for_text(u["erin"], "   ")
    with pytest.raises(NotFound):
        hub.similar.for_case(u["erin"], "ESC-999999")


def test_intake_hint_names_the_open_duplicate_and_its_owner(world):
    hub, u, keys, _ = world
    hub.cases.assign(u["erin"], keys[0], "erin")
    hints = hub.similar.intake_hints(u["sam"], title="Gateway OutOfMemoryError after hours of load",
                                     product="gateway", intake={"symptoms": "Java heap space, the gateway dies"})
    assert hints and hints[0].startswith(f"this looks like {keys[0]}") and hints[0].endswith("open, owned by erin")
    panel = hub.similar.panel(u["erin"], keys[1], limit=3)
    assert panel[0]["key"] == keys[0] and panel[0]["hint"].endswith("owned by erin")
