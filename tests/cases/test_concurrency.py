"""Concurrent writers on one case: optimistic locking lets exactly one stale-version write
through, the rest get Conflict, and no acknowledged note or status change is lost."""

from __future__ import annotations

import threading

from backline.cases.model import CaseSeverity, Role
from backline.cases.service import CaseService, NewCase
from backline.cases.users import UserStore
from backline.errors import CaseError, Conflict

FULL = {"symptoms": "x" * 20, "business_impact": "y" * 20, "environment": "z" * 10, "steps_to_reproduce": "s" * 20,
        "already_tried": "t" * 10, "expected": "ok!", "actual": "bad", "evidence": ["a"]}


def _race(n, fn):
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = ("ok", fn(i))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            results[i] = (type(exc).__name__, exc)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_same_version_writers_one_wins(engine):
    users = UserStore(engine)
    erin, _ = users.add("erin", Role.ENGINEER)
    svc = CaseService(engine)
    case = svc.create(erin, NewCase("t", "p", "1", "acme", CaseSeverity.S2, FULL))
    v = case.row_version
    sevs = ["S1", "S3", "S4", "S1", "S3", "S4", "S1", "S3"]
    results = _race(8, lambda i: svc.update(erin, case.key, {"severity": sevs[i]}, expected_version=v))
    winners = [r for r in results if r[0] == "ok"]
    assert len(winners) == 1, results
    assert all(r[0] == "Conflict" for r in results if r[0] != "ok")
    now = svc.get(erin, case.key)
    assert now.row_version == v + 1 and now.severity.value == winners[0][1].severity.value
    assert [e.action for e in svc.audit_log(erin, case.key)].count("update") == 1


def test_concurrent_notes_and_status_changes_lose_nothing(engine):
    users = UserStore(engine)
    erin, _ = users.add("erin", Role.ENGINEER)
    svc = CaseService(engine)
    case = svc.create(erin, NewCase("t", "p", "1", "acme", CaseSeverity.S2, FULL))
    svc.set_status(erin, case.key, "investigating")

    def work(i):
        done = {"notes": [], "moves": 0}
        for j in range(10):
            done["notes"].append(svc.add_note(erin, case.key, f"n{i}-{j}", "public").id)
            cur = svc.get(erin, case.key)
            target = "waiting_customer" if cur.status.value == "investigating" else "investigating"
            try:
                svc.set_status(erin, case.key, target, expected_version=cur.row_version)
                done["moves"] += 1
            except (Conflict, CaseError):
                pass
        return done
    results = _race(6, work)
    assert all(r[0] == "ok" for r in results), [r for r in results if r[0] != "ok"]
    acked = [nid for _ok, d in results for nid in d["notes"]]
    stored = {n.id: n.body for n in svc.notes(erin, case.key)}
    assert len(acked) == 60 and set(acked) == set(stored)
    moves = sum(d["moves"] for _ok, d in results)
    statuses = [e for e in svc.audit_log(erin, case.key) if e.action == "status"]
    assert len(statuses) == moves + 1                     # + the first move to investigating
    assert svc.get(erin, case.key).row_version == case.row_version + 1 + moves
