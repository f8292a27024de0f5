"""SLA clocks: targets, business calendars with holidays and time zones, pauses,
warnings, escalation levels, Zammad contact semantics.  No sleeping: time is passed in."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from importlib import resources

import pytest

from backline.cases.model import CaseSeverity as Sev, CaseStatus as St, Role
from backline.cases.service import CaseService, NewCase
from backline.cases.sla import ClockInput, SlaConfig, compute_clocks
from backline.cases.users import UserStore
from backline.errors import UsageError
from backline.storage.testdb import ManualClock

UTC = timezone.utc


def T(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def cfg() -> SlaConfig:
    return SlaConfig.default()


def clocks(cfg, now, *, sev=Sev.S1, created="2026-11-23T09:00", history=None, fr=None, cust=None, staff=None,
           calendar="24x7"):
    created_at = T(created)
    hist = [(created_at, St.NEW)] + [(T(a), st) for a, st in (history or [])]
    inp = ClockInput(sev, created_at, hist, T(fr) if fr else None, T(cust) if cust else created_at,
                     T(staff) if staff else None, "default", calendar)
    return {c.name: c for c in compute_clocks(inp, cfg, T(now))}


def test_running_warning_breach_and_escalation_levels(cfg):
    c = clocks(cfg, "2026-11-23T09:30")["first_response"]          # S1: 60 min, 24x7
    assert (c.state, c.deadline, c.remaining) == ("running", T("2026-11-23T10:00"), timedelta(minutes=30))
    c = clocks(cfg, "2026-11-23T09:50")["first_response"]          # 50/60 >= 75 %
    assert c.state == "warning"
    c = clocks(cfg, "2026-11-23T10:30")["first_response"]
    assert (c.state, c.deadline, c.escalation_level, c.notify) == ("breached", T("2026-11-23T10:00"), 1, ("owner",))
    assert c.remaining == timedelta(minutes=-30)
    c = clocks(cfg, "2026-11-23T11:01")["first_response"]          # level 2 one hour after the breach
    assert (c.escalation_level, c.notify) == (2, ("owner", "manager"))


def test_business_hours_over_a_weekend(cfg):
    # S2 first response = 240 business minutes; Friday 16:00 leaves one hour on Friday
    c = clocks(cfg, "2026-11-27T16:30", sev=Sev.S2, created="2026-11-27T16:00",
               calendar="business-utc")["first_response"]
    assert c.deadline == T("2026-11-30T12:00") and c.elapsed == timedelta(minutes=30)
    c = clocks(cfg, "2026-11-28T12:00", sev=Sev.S2, created="2026-11-27T16:00",
               calendar="business-utc")["first_response"]          # Saturday: the clock does not move
    assert c.elapsed == timedelta(minutes=60) and c.state == "running"


def test_holidays_are_closed(cfg):
    # Thursday 24 Dec 16:00; 25 and 26 Dec are holidays, then the weekend
    c = clocks(cfg, "2026-12-24T16:00", sev=Sev.S2, created="2026-12-24T16:00",
               calendar="business-utc")["first_response"]
    assert c.deadline == T("2026-12-28T12:00")


def test_time_zone_of_the_calendar(cfg):
    # Berlin opens 08:00-18:00 local (UTC+1 in November): Monday 16:00 UTC = 17:00 local
    c = clocks(cfg, "2026-11-23T16:00", sev=Sev.S2, created="2026-11-23T16:00", calendar="berlin")["first_response"]
    assert c.deadline == T("2026-11-24T10:00")            # 1 h Monday + 3 h from 07:00 UTC Tuesday


def test_daylight_saving_change(cfg):
    # Berlin moves to UTC+2 on 28 March 2027: Friday 26 March closes 16:00 local = 15:00 UTC,
    # Monday 29 March opens 08:00 local = 06:00 UTC
    c = clocks(cfg, "2027-03-26T14:00", sev=Sev.S2, created="2027-03-26T14:00", calendar="berlin")["first_response"]
    assert c.deadline == T("2027-03-29T09:00")             # 1 h Friday + 3 h Monday from 06:00 UTC


def test_pause_adds_paused_time_back(cfg):
    hist = [("2026-11-23T09:10", St.INVESTIGATING), ("2026-11-23T10:00", St.WAITING_CUSTOMER),
            ("2026-11-23T11:00", St.INVESTIGATING)]
    c = clocks(cfg, "2026-11-23T12:00", history=hist)["resolution"]       # S1 resolution 24 h
    assert c.elapsed == timedelta(hours=2)
    assert c.deadline == T("2026-11-24T10:00")
    paused = clocks(cfg, "2026-11-23T10:30", history=hist[:2])["resolution"]
    assert paused.state == "paused" and paused.deadline is None and paused.elapsed == timedelta(minutes=60)


def test_first_response_met_or_missed(cfg):
    assert clocks(cfg, "2026-11-23T12:00", fr="2026-11-23T09:40")["first_response"].state == "met"
    late = clocks(cfg, "2026-11-23T12:00", fr="2026-11-23T10:20")["first_response"]
    assert late.state == "missed" and late.stopped_at == T("2026-11-23T10:20")


def test_update_clock_runs_only_while_customer_waits(cfg):
    c = clocks(cfg, "2026-11-23T12:00", fr="2026-11-23T09:20", staff="2026-11-23T10:00", cust="2026-11-23T11:00")
    assert c["update"].started_at == T("2026-11-23T11:00") and c["update"].state == "running"
    assert c["update"].deadline == T("2026-11-23T13:00")        # S1 update 120 min
    c = clocks(cfg, "2026-11-23T12:00", fr="2026-11-23T09:20", staff="2026-11-23T11:30", cust="2026-11-23T11:00")
    assert c["update"].state == "idle" and c["update"].deadline is None


def test_resolution_stops_and_reopen_resumes(cfg):
    hist = [("2026-11-23T10:00", St.INVESTIGATING), ("2026-11-23T12:00", St.RESOLVED)]
    c = clocks(cfg, "2026-11-25T12:00", history=hist)["resolution"]
    assert c.state == "met" and c.stopped_at == T("2026-11-23T12:00") and c.elapsed == timedelta(hours=3)
    reopened = hist + [("2026-11-24T12:00", St.INVESTIGATING)]
    c = clocks(cfg, "2026-11-24T13:00", history=reopened)["resolution"]
    assert c.state == "running" and c.elapsed == timedelta(hours=4)   # resolved time not counted (stop status)


def test_warning_share_is_configurable():
    data = json.loads(resources.files("backline.cases").joinpath("data/sla_policies.json").read_text())
    data = copy.deepcopy(data)
    data["warning_share"] = 0.5
    cfg = SlaConfig.from_json(data)
    assert clocks(cfg, "2026-11-23T09:31")["first_response"].state == "warning"
    assert clocks(SlaConfig.default(), "2026-11-23T09:31")["first_response"].state == "running"
    data["pause_statuses"] = ["waiting_customer", "waiting_development"]
    cfg2 = SlaConfig.from_json(data)
    c = clocks(cfg2, "2026-11-23T12:00", history=[("2026-11-23T10:00", St.WAITING_DEVELOPMENT)])["resolution"]
    assert c.state == "paused" and c.elapsed == timedelta(hours=1)


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(UsageError, match="time zone"):
        SlaConfig.from_json({"calendars": {"x": {"timezone": "Mars/Olympus"}}, "policies": {}})
    with pytest.raises(UsageError, match="S1..S4"):
        SlaConfig.from_json({"calendars": {}, "policies": {"default": {"targets": {"S1": {
            "first_response": 1, "update": 1, "resolution": 1}}}}})


def test_service_recomputes_on_severity_and_contact(engine):
    clock = ManualClock(T("2026-11-23T09:00"))
    users = UserStore(engine, clock)
    sam, _ = users.add("sam", Role.SUPPORT)
    erin, _ = users.add("erin", Role.ENGINEER)
    carl, _ = users.add("carl", Role.CUSTOMER, org="acme")
    svc = CaseService(engine, clock=clock)
    intake = {"symptoms": "x" * 20, "business_impact": "y" * 20, "environment": "z" * 10,
              "steps_to_reproduce": "s" * 20, "already_tried": "t" * 10, "expected": "ok!", "actual": "bad",
              "evidence": ["a"]}
    case = svc.create(sam, NewCase("t", "p", "1", "acme", Sev.S3, intake, calendar="24x7"))
    clock.advance(minutes=90)
    by = {c.name: c for c in svc.sla_clocks(erin, case.key)}
    assert by["first_response"].state == "running"                    # S3: 480 min
    svc.update(erin, case.key, {"severity": "S1"})
    by = {c.name: c for c in svc.sla_clocks(erin, case.key)}
    assert by["first_response"].state == "breached" and by["first_response"].deadline == T("2026-11-23T10:00")
    svc.add_note(erin, case.key, "internal only", "internal")
    assert {c.name: c for c in svc.sla_clocks(erin, case.key)}["first_response"].state == "breached"
    clock.advance(minutes=5)
    svc.add_note(erin, case.key, "We are on it", "public")
    by = {c.name: c for c in svc.sla_clocks(erin, case.key)}
    assert by["first_response"].state == "missed" and by["update"].state == "idle"
    clock.advance(minutes=30)
    svc.add_note(carl, case.key, "Any news?", "public")                # the customer waits again
    by = {c.name: c for c in svc.sla_clocks(erin, case.key)}
    assert by["update"].state == "running" and by["update"].started_at == clock()
    svc.set_status(erin, case.key, "investigating")
    svc.set_status(erin, case.key, "waiting_customer")
    clock.advance(hours=5)
    by = {c.name: c for c in svc.sla_clocks(erin, case.key)}
    assert by["resolution"].state == "paused" and by["update"].state == "paused"
