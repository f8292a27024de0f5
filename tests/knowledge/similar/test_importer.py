"""``backline case import``: tracker exports (JSON lines) become cases with external ids."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from backline.cases.hub import Hub
from backline.cases.model import Role
from backline.knowledge.similar.importer import CaseImporter
from backline.storage import tables as T


@pytest.fixture
def hub(engine, tmp_path):
    return Hub.build(engine, blob_root=tmp_path / "blobs")


def _corpus_lines(corpus, n):
    with (corpus / "cases" / "gitbugs_cases.jsonl").open() as fh:
        return [json.loads(next(fh)) for _ in range(n)]


def test_import_keeps_fields_reports_bad_lines_and_is_idempotent(hub, corpus, tmp_path):
    erin, _ = hub.users.add("erin", Role.ENGINEER)
    records = _corpus_lines(corpus, 12)
    lines = [json.dumps(r) for r in records[:5]]
    lines += ["{not json", "", json.dumps(["a list"]), json.dumps({"title": "no id"}),
              json.dumps({"id": "mini-1"})]                 # every field but id missing: fine
    lines += [json.dumps(r) for r in records[5:]]
    lines += [json.dumps(records[0])]                        # the same id again in one file
    src = tmp_path / "export.jsonl"
    src.write_text("\n".join(lines) + "\n")
    importer = CaseImporter(hub.cases, hub.similar.indexer)
    report = importer.run(erin, src, embed=False)
    assert report.added == 13 and report.updated == 0
    assert [n for n, _ in report.bad] == [6, 8, 9, 18]
    assert "not JSON" in report.bad[0][1] and report.bad[2][1] == "no id" and "appears again" in report.bad[3][1]

    with hub.engine.connect() as conn:
        ext = {r.external_id: r for r in conn.execute(select(T.case_external))}
        first = conn.execute(select(T.cases).where(T.cases.c.id == ext[records[0]["id"]].case_id)).mappings().one()
    assert ext[records[0]["id"]].record == records[0]          # unknown fields (priority, dup_group...) kept
    assert first["title"] == records[0]["title"] and first["product"] == records[0]["project"]
    assert first["created_at"].year == int(records[0]["created"][:4])
    assert ext["mini-1"].record == {"id": "mini-1"}
    with hub.engine.connect() as conn:
        mini = hub.similar.resolve(conn, erin, "mini-1")
    assert mini["title"] == "(untitled mini-1)" and mini["product"] == "imported" and mini["status"] == "new"
    assert hub.similar.indexer.pending() == 13                  # --no-embed: left to the queue
    assert hub.cases.audit_log(erin, first["key"])[0].action == "import"

    again = importer.run(erin, src, embed=False)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 13)

    records[1]["title"] = "A new title from the tracker"
    src.write_text("\n".join(json.dumps(r) for r in records[:3]) + "\n")
    third = importer.run(erin, src, embed=False)
    assert (third.added, third.updated, third.unchanged) == (0, 1, 2)
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(T.cases)).scalar_one() == 13
        assert conn.execute(select(T.cases.c.title).where(T.cases.c.id == ext[records[1]["id"]].case_id)
                            ).scalar_one() == "A new title from the tracker"


def test_imported_duplicates_find_each_other_by_external_id(hub, corpus, tmp_path):
    erin, _ = hub.users.add("erin", Role.ENGINEER)
    with (corpus / "cases" / "gitbugs_cases.jsonl").open() as fh:
        rows = [json.loads(line) for line in fh]
    pair = ("hadoop-13279610", "hadoop-13287276")          # a labelled duplicate pair of the corpus
    pick = [r for r in rows if r["id"] in pair] + [r for r in rows if r["project"] == "hadoop"][:30]
    src = tmp_path / "export.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in pick) + "\n")
    report = CaseImporter(hub.cases, hub.similar.indexer).run(erin, src)
    assert report.indexed == report.added == len({r["id"] for r in pick})
    hits = hub.similar.for_case(erin, pair[0], limit=5)
    assert pair[0] not in [h.external_id for h in hits]
    assert pair[1] in [h.external_id for h in hits[:3]]
    with hub.engine.connect() as conn:
        kinds = {k for (k,) in conn.execute(select(T.case_vectors.c.kind))}
    assert kinds == {"full", "title"}                            # no internal notes imported


def test_an_unreadable_file_is_a_usage_error(hub, tmp_path):
    from backline.errors import UsageError
    erin, _ = hub.users.add("erin", Role.ENGINEER)
    with pytest.raises(UsageError, match="nope.jsonl"):
        CaseImporter(hub.cases, hub.similar.indexer).run(erin, tmp_path / "nope.jsonl")


def test_postgresql_import_leaves_no_pending_gin_rows(hub, corpus, tmp_path):
    """GIN takes new rows into a pending list every search reads whole; the import merges it."""
    if hub.engine.dialect.name != "postgresql":
        pytest.skip("GIN pending lists are PostgreSQL's")
    from sqlalchemy import text
    erin, _ = hub.users.add("erin", Role.ENGINEER)
    src = tmp_path / "export.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in _corpus_lines(corpus, 20)) + "\n")
    pending = "SELECT gin_clean_pending_list(to_regclass('ix_case_fts_tsv'))"
    assert CaseImporter(hub.cases, hub.similar.indexer).run(erin, src, embed=False).added == 20
    with hub.engine.begin() as conn:
        assert conn.execute(text(pending)).scalar() == 0              # merged by the import
        conn.execute(text("UPDATE case_search SET title_terms = title_terms || ' y'"))
        assert conn.execute(text(pending)).scalar() > 0               # rows written otherwise wait (the check can fail)
