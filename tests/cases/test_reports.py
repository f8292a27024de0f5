"""The summary report, checked against numbers worked out by hand."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from backline.cases.model import CaseSeverity as Sev, Role
from backline.cases.reports import summary
from backline.cases.service import CaseService, NewCase
from backline.cases.users import UserStore
from backline.errors import PermissionDenied
from backline.storage.testdb import ManualClock

FULL = {"symptoms": "x" * 20, "business_impact": "y" * 20, "environment": "z" * 10, "steps_to_reproduce": "s" * 20,
        "already_tried": "t" * 10, "expected": "ok!", "actual": "bad", "evidence": ["a"]}


def test_summary_numbers(engine):
    clock = ManualClock(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))
    users = UserStore(engine, clock)
    sam, _ = users.add("sam", Role.SUPPORT)
    erin, _ = users.add("erin", Role.ENGINEER)
    max_, _ = users.add("max", Role.MANAGER)
    svc = CaseService(engine, clock=clock)

    def new(sev, intake=FULL):
        return svc.create(sam, NewCase("t", "p", "1", "acme", sev, intake, calendar="24x7"))

    a = new(Sev.S1)                       # answered after 30 min, resolved after 120 min
    b = new(Sev.S2)                       # answered after 90 min, still open
    c = new(Sev.S2, {"symptoms": "too little"})   # returned for information
    d = new(Sev.S1)                       # never answered: first response breached (S1: 60 min)
    clock.advance(minutes=30)
    svc.add_note(erin, a.key, "on it", "public")
    clock.advance(minutes=60)
    svc.add_note(erin, b.key, "on it", "public")
    svc.set_status(erin, a.key, "investigating")
    clock.advance(minutes=30)
    svc.set_status(erin, a.key, "resolved")          # 120 min after creation
    rep = summary(svc, max_)
    assert rep["cases"] == 4
    assert rep["open_by_severity"] == {"S1": 1, "S2": 2, "S3": 0, "S4": 0}
    assert rep["median_minutes_to_first_response"] == 60.0        # median of 30 and 90
    assert rep["median_minutes_to_resolution"] == 120.0
    assert rep["returned_for_information_share"] == 0.25
    assert rep["sla_breaches"]["first_response"] == 1 and rep["sla_breaches"]["keys"] == [d.key]
    assert c.status.value == "needs_info"
    with pytest.raises(PermissionDenied):
        summary(svc, sam)
