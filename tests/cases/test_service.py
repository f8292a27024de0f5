"""The case service against SQLite and PostgreSQL: intake, transitions, ownership,
notes with history, visibility, audit, optimistic locking."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from backline.cases.model import CaseSeverity, CaseStatus, Participant, ParticipantRole, Role
from backline.cases.service import CaseService, NewCase
from backline.cases.users import UserStore
from backline.errors import CaseError, Conflict, NotFound, PermissionDenied
from backline.storage.testdb import ManualClock

FULL_INTAKE = {
    "symptoms": "Gateway restarts every few hours with OutOfMemoryError in the pool",
    "business_impact": "All 4,000 branch users lose connections for ~5 minutes",
    "environment": "Gateway 7.2.1 on RHEL 9, 3-node cluster",
    "steps_to_reproduce": "Run the nightly batch with 200 parallel sessions",
    "already_tried": "Raised heap to 8 GB; no change",
    "expected": "Stable memory",
    "actual": "Heap grows until the JVM dies",
    "evidence": ["hs_err_pid4242.log", "gc.log"],
}


@pytest.fixture
def world(engine):
    clock = ManualClock(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))   # a Monday
    users = UserStore(engine, clock)
    svc = CaseService(engine, clock=clock)
    u = {}
    u["support"], _ = users.add("sam", Role.SUPPORT, team="emea")
    u["support2"], _ = users.add("sue", Role.SUPPORT, team="apac")
    u["engineer"], _ = users.add("erin", Role.ENGINEER)
    u["developer"], _ = users.add("dev", Role.DEVELOPER)
    u["manager"], _ = users.add("max", Role.MANAGER)
    u["customer"], _ = users.add("carl", Role.CUSTOMER, org="acme")
    u["other_customer"], _ = users.add("olga", Role.CUSTOMER, org="globex")
    return svc, u, clock


def new_case(svc, u, **kw):
    data = dict(title="Gateway OOM", product="gateway", version="7.2.1", org="acme",
                severity=CaseSeverity.S2, intake=FULL_INTAKE)
    data.update(kw)
    return svc.create(u["support"], NewCase(**data))


def test_complete_escalation_enters_queue_with_key(world):
    svc, u, _ = world
    # the gateway product's rules also want a network capture
    case = new_case(svc, u, intake={**FULL_INTAKE, "network_capture": "both-ends.pcapng"})
    assert case.key == "ESC-1001"
    assert case.status is CaseStatus.NEW
    assert case.intake_missing == () and case.intake_score == 1.0
    assert case.created_by == "sam"
    assert new_case(svc, u, product="other").key == "ESC-1002"


def test_incomplete_escalation_goes_to_needs_info_with_list(world):
    svc, u, _ = world
    case = new_case(svc, u, product="other", intake={"symptoms": "It crashes sometimes, no idea why"})
    assert case.status is CaseStatus.NEEDS_INFO
    assert set(case.intake_missing) == {"business_impact", "environment", "steps_to_reproduce",
                                        "already_tried", "expected", "actual", "evidence"}
    assert 0 < case.intake_score < 1
    # resubmitting without the items is refused; after adding them it enters the queue
    with pytest.raises(CaseError, match="still missing"):
        svc.set_status(u["support"], case.key, "new")
    svc.update(u["support"], case.key, {"intake": FULL_INTAKE})
    case = svc.set_status(u["support"], case.key, "new")
    assert case.status is CaseStatus.NEW and case.returned_for_info


def test_transitions_are_checked(world):
    svc, u, _ = world
    case = new_case(svc, u, product="other")
    with pytest.raises(CaseError, match="cannot move"):
        svc.set_status(u["engineer"], case.key, "fix_pending")
    for st in ("investigating", "waiting_development", "fix_pending", "resolved", "closed"):
        case = svc.set_status(u["engineer"], case.key, st)
    assert case.status is CaseStatus.CLOSED
    with pytest.raises(CaseError):
        svc.set_status(u["engineer"], case.key, "investigating")
    with pytest.raises(CaseError, match="unknown status"):
        svc.set_status(u["engineer"], case.key, "done")


def test_support_may_not_investigate_and_customer_may_not_move(world):
    svc, u, _ = world
    case = new_case(svc, u, product="other")
    with pytest.raises(PermissionDenied):
        svc.set_status(u["support"], case.key, "investigating")
    with pytest.raises(PermissionDenied):
        svc.set_status(u["customer"], case.key, "closed")


def test_assign_owner_and_co_owners(world):
    svc, u, _ = world
    case = new_case(svc, u, product="other")
    case = svc.assign(u["manager"], case.key, "erin", co_owners=["dev"])
    assert case.owner == "erin" and case.co_owners == ("dev",)
    with pytest.raises(CaseError, match="owners must be"):
        svc.assign(u["manager"], case.key, "carl")
    with pytest.raises(PermissionDenied):
        svc.assign(u["support"], case.key, "erin")
    assert [c.key for c in svc.list(u["engineer"], owner="erin")] == [case.key]
    # every write answers with the names as they are after it (owner, creator), like a fresh read
    for write in (lambda: svc.set_status(u["engineer"], case.key, "investigating"),
                  lambda: svc.update(u["engineer"], case.key, {"title": "Renamed"}),
                  lambda: svc.assign(u["manager"], case.key, "dev")):
        after = write()
        fresh = svc.get(u["engineer"], case.key)
        assert (after.owner, after.created_by, after.row_version) == (fresh.owner, fresh.created_by, fresh.row_version)
    assert fresh.owner == "dev" and fresh.created_by == "sam"
    audit = svc.audit_log(u["engineer"], case.key)
    assert audit[-1].action == "assign" and audit[-1].before["owner"] == "erin" and audit[-1].after["owner"] == "dev"


def test_visibility_of_cases(world):
    svc, u, _ = world
    mine = new_case(svc, u, product="other", org="acme")
    theirs = svc.create(u["support2"], NewCase("Other", "other", "1", "globex", CaseSeverity.S3, FULL_INTAKE))
    assert {c.key for c in svc.list(u["customer"])} == {mine.key}
    assert {c.key for c in svc.list(u["other_customer"])} == {theirs.key}
    assert {c.key for c in svc.list(u["support"])} == {mine.key}
    assert {c.key for c in svc.list(u["engineer"])} == {mine.key, theirs.key}
    with pytest.raises(NotFound):
        svc.get(u["customer"], theirs.key)
    with pytest.raises(NotFound):
        svc.get(u["support"], theirs.key)


def test_notes_visibility_edit_history_and_contact(world):
    svc, u, clock = world
    case = new_case(svc, u, product="other")
    clock.advance(minutes=5)
    internal = svc.add_note(u["engineer"], case.key, "Looks like the pool leak from ESC-900", "internal")
    assert svc.get(u["engineer"], case.key).first_response_at is None   # internal notes never count
    clock.advance(minutes=5)
    public = svc.add_note(u["engineer"], case.key, "We are looking at the heap dump now.", "public")
    assert svc.get(u["engineer"], case.key).first_response_at == clock()
    with pytest.raises(PermissionDenied):
        svc.add_note(u["customer"], case.key, "psst", "internal")
    svc.add_note(u["customer"], case.key, "Thanks, another crash at 10:02", "public")
    assert [n.id for n in svc.notes(u["customer"], case.key)] == [public.id, public.id + 1]
    assert len(svc.notes(u["engineer"], case.key)) == 3
    edited = svc.edit_note(u["engineer"], internal.id, "Same leak as ESC-900 (pool not closed)")
    assert edited.revisions == 1
    hist = svc.note_history(u["engineer"], internal.id)
    assert hist[0]["body"] == "Looks like the pool leak from ESC-900"
    with pytest.raises(PermissionDenied):
        svc.edit_note(u["developer"], internal.id, "not mine")
    with pytest.raises(NotFound):
        svc.note_history(u["customer"], internal.id)
    with pytest.raises(Conflict):
        svc.edit_note(u["engineer"], internal.id, "again", expected_revisions=0)


def test_audit_log_records_before_and_after(world):
    svc, u, _ = world
    case = new_case(svc, u, product="other")
    svc.set_status(u["engineer"], case.key, "investigating")
    svc.update(u["engineer"], case.key, {"severity": "S1"})
    log = svc.audit_log(u["manager"], case.key)
    assert [e.action for e in log] == ["create", "status", "update"]
    assert log[1].before == {"status": "new"} and log[1].after["status"] == "investigating"
    assert log[2].before == {"severity": "S2"} and log[2].after == {"severity": "S1"}
    assert all(e.actor in ("sam", "erin") for e in log)
    with pytest.raises(PermissionDenied):
        svc.audit_log(u["customer"], case.key)


def test_stale_write_conflicts_and_changes_nothing(world):
    svc, u, _ = world
    case = new_case(svc, u, product="other")
    v = case.row_version
    svc.set_status(u["engineer"], case.key, "investigating", expected_version=v)
    with pytest.raises(Conflict):
        svc.update(u["manager"], case.key, {"severity": "S1"}, expected_version=v)
    after = svc.get(u["engineer"], case.key)
    assert after.severity is CaseSeverity.S2 and after.row_version == v + 1
    assert [e.action for e in svc.audit_log(u["manager"], case.key)] == ["create", "status"]


def test_invalid_transition_is_not_a_partial_write(world):
    svc, u, _ = world
    case = new_case(svc, u, product="other")
    with pytest.raises(CaseError):
        svc.set_status(u["engineer"], case.key, "closed_forever")
    with pytest.raises(CaseError):
        svc.set_status(u["engineer"], case.key, "fix_pending")
    assert svc.get(u["engineer"], case.key).row_version == case.row_version
    assert len(svc.audit_log(u["manager"], case.key)) == 1


def test_links_and_participants(world):
    svc, u, _ = world
    a = new_case(svc, u, product="other")
    b = new_case(svc, u, product="other", links=(a.key,),
                 participants=(Participant("Carl C.", ParticipantRole.CUSTOMER_CONTACT, "carl@acme.test"),))
    assert b.links == (a.key,)
    b = svc.add_participant(u["engineer"], b.key, Participant("Vera", ParticipantRole.SALES, "vera@vendor.test"))
    assert [p.role for p in b.participants] == [ParticipantRole.CUSTOMER_CONTACT, ParticipantRole.SALES]
    assert svc.link(u["engineer"], a.key, b.key).links == (b.key,)
    with pytest.raises(CaseError, match="no such case"):
        new_case(svc, u, product="other", links=("ESC-4242",))
    with pytest.raises(NotFound):
        svc.link(u["engineer"], a.key, "ESC-4242")
    assert len(svc.list(u["engineer"])) == 2                  # the refused case was not written


def test_note_audit_entry_is_stored_like_every_other_entry(world, engine):
    """On PostgreSQL the note and its audit entry are one statement; the rows must be the same."""
    from sqlalchemy import select as sel

    from backline.storage import tables as T

    svc, u, _ = world
    case = new_case(svc, u, product="other")
    note = svc.add_note(u["engineer"], case.key, "Heap dump shows 2 GB of session objects", "public")
    with engine.connect() as conn:
        rows = conn.execute(sel(T.audit_log, T.audit_log.c.before.is_(None).label("before_is_sql_null"))
                            .where(T.audit_log.c.case_id == case.id).order_by(T.audit_log.c.id)).mappings().all()
    created, noted = rows[0], rows[-1]
    assert (noted["entity"], noted["entity_id"], noted["action"]) == ("note", str(note.id), "create")
    assert (noted["actor"], noted["actor_id"]) == ("erin", u["engineer"].id)
    assert noted["after"] == {"visibility": "public", "body": "Heap dump shows 2 GB of session objects"}
    assert noted["before"] is None and noted["before_is_sql_null"] == created["before_is_sql_null"]
    assert noted["at"] is not None and svc.notes(u["engineer"], case.key)[-1].id == note.id
