"""The dashboard numbers and the queue order, with a hand-moved clock (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backline.cases.dashboard import dashboard
from backline.cases.model import CaseSeverity, Role
from backline.cases.queue import CaseQueue, QueueFilters
from backline.cases.service import CaseService, NewCase
from backline.cases.users import UserStore
from backline.errors import PermissionDenied
from backline.storage.testdb import ManualClock

FULL = {"symptoms": "Gateway restarts with OutOfMemoryError", "business_impact": "4,000 users disconnected",
        "environment": "7.2.1 on RHEL 9", "steps_to_reproduce": "Run the nightly batch", "already_tried": "More heap",
        "expected": "Stable", "actual": "Dies", "evidence": ["gc.log"]}
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)      # business-utc calendar: Mon-Fri 9-17


@pytest.fixture
def world(engine):
    clock = ManualClock(MONDAY)
    cases = CaseService(engine, clock=clock)
    users = UserStore(engine, clock)
    erin, _ = users.add("erin", Role.ENGINEER)
    mia, _ = users.add("mia", Role.MANAGER)
    carl, _ = users.add("carl", Role.CUSTOMER, org="acme")
    return clock, cases, erin, mia, carl


def test_dashboard_counts_breaches_warnings_times_and_load(world):
    clock, cases, erin, mia, carl = world
    s1 = cases.create(erin, NewCase("S1 down", "orders", "1", "acme", CaseSeverity.S1, FULL))   # 60 min first response
    s3 = cases.create(erin, NewCase("S3 slow", "orders", "1", "acme", CaseSeverity.S3, FULL))  # 480 min
    cases.assign(erin, s1.key, "erin")
    clock.advance(minutes=50)                       # S1 first response: 50 of 60 min, past 75% -> warning
    d = dashboard(cases, mia)
    assert d.open_total == 2 and d.open_by_severity_status["new"] == {"S1": 1, "S2": 0, "S3": 1, "S4": 0}
    assert d.warning_now["first_response"] == 1 and d.breached_now["first_response"] == 0
    assert sum(d.warnings_per_day) >= 1 and d.warnings_per_day[-1] >= 1      # warned today
    clock.advance(minutes=20)                       # 70 min: breached 10 min ago
    d = dashboard(cases, mia)
    assert d.breached_now["first_response"] == 1
    assert d.overdue[0].key == s1.key and d.overdue[0].over == timedelta(minutes=10)
    assert d.breaches_per_day[-1] == 1
    assert d.load["erin"]["S1"] == 1 and d.load["(unassigned)"]["S3"] == 1
    cases.add_note(erin, s1.key, "Looking at it", "public")     # first response after 70 min
    cases.set_status(erin, s1.key, "investigating")
    clock.advance(hours=2)
    cases.set_status(erin, s1.key, "resolved")      # resolved 3 h 10 min after creation
    d = dashboard(cases, mia)
    week = d.weeks[-1]
    assert week.cases == 2 and week.ttfr_median_h == pytest.approx(70 / 60, abs=0.01)
    assert week.ttr_median_h == pytest.approx(190 / 60, abs=0.01)
    assert d.breached_now["first_response"] == 0     # S1 is resolved; S3 has used 190 of 480 minutes
    assert d.breaches_per_day[-1] == 1                # S1's missed first response still counts today
    assert d.open_total == 1
    with pytest.raises(PermissionDenied):
        dashboard(cases, carl)


def test_queue_sorts_by_sla_urgency_and_stays_exact_as_time_passes(world):
    clock, cases, erin, mia, carl = world
    q = CaseQueue(cases)
    s4 = cases.create(erin, NewCase("S4 question", "orders", "1", "acme", CaseSeverity.S4, FULL))
    s1 = cases.create(erin, NewCase("S1 down", "orders", "1", "acme", CaseSeverity.S1, FULL))
    s2 = cases.create(erin, NewCase("S2 broken", "orders", "1", "globex", CaseSeverity.S2, FULL))
    page = q.page(mia, QueueFilters())
    assert [r.key for r in page.rows] == [s1.key, s2.key, s4.key]
    assert page.rows[0].urgent.state == "running" and page.rows[0].urgent.remaining == timedelta(minutes=60)
    clock.advance(minutes=61)
    page = q.page(mia, QueueFilters())                # same plans, a later time: now breached
    assert page.rows[0].urgent.state == "breached" and page.rows[0].urgent.remaining == timedelta(minutes=-1)
    cases.set_status(erin, s1.key, "waiting_customer")   # the change is seen at once
    page = q.page(mia, QueueFilters())
    assert page.rows[0].key == s1.key and page.rows[0].urgent.state == "breached"  # a breach stays first
    cases.add_note(erin, s2.key, "On it", "public")
    page = q.page(carl, QueueFilters())               # customers: their organisation only
    assert {r.key for r in page.rows} == {s1.key, s4.key}
    page = q.page(mia, QueueFilters(severity=("S2",), text="broken"))
    assert [r.key for r in page.rows] == [s2.key]
    page = q.page(mia, QueueFilters(status=("closed",)))
    assert page.rows == () and page.total == 0
    assert q.page(mia, QueueFilters(sort="severity")).rows[0].key == s1.key


def test_warming_makes_the_plans_of_open_cases(world):
    clock, cases, erin, mia, carl = world
    open_ = cases.create(erin, NewCase("open", "orders", "1", "acme", CaseSeverity.S2, FULL))
    done = cases.create(erin, NewCase("done", "orders", "1", "acme", CaseSeverity.S2, FULL))
    cases.set_status(erin, done.key, "resolved")
    q = CaseQueue(cases)
    assert q.warm() == 1
    assert set(q.clocks._plans) == {open_.id}
    before = q.clocks._plans[open_.id]
    q.page(mia, QueueFilters())
    assert q.clocks._plans[open_.id] is before          # used, not remade
