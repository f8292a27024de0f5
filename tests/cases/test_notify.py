"""E-mail through a real SMTP server (aiosmtpd) and HMAC-signed webhooks to a real local
HTTP receiver, with retries and backoff.  Only 127.0.0.1 is used."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller

from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Participant, ParticipantRole, Role
from backline.cases.notify import Dispatcher, NotifyConfig, Webhook, sla_sweep
from backline.cases.service import NewCase
from backline.storage.testdb import ManualClock

FULL = {"symptoms": "x" * 20, "business_impact": "y" * 20, "environment": "z" * 10, "steps_to_reproduce": "s" * 20,
        "already_tried": "t" * 10, "expected": "ok!", "actual": "bad", "evidence": ["a"]}
SECRET = "s3cr3t"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        import email
        msg = email.message_from_bytes(envelope.content)
        self.messages.append((envelope.rcpt_tos, msg))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=free_port())
    ctl.start()
    yield ctl.port, inbox
    ctl.stop()


@pytest.fixture
def receiver():
    got = []
    state = {"fail_first": 0}

    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state["fail_first"] > 0:
                state["fail_first"] -= 1
                self.send_response(503)
                self.end_headers()
                return
            got.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", got, state
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def world(engine, tmp_path, smtp, receiver):
    port, inbox = smtp
    url, got, state = receiver
    clock = ManualClock(datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc))
    cfg = NotifyConfig(smtp_host="127.0.0.1", smtp_port=port, sender="escalations@vendor.test",
                       webhooks=(Webhook(url, SECRET),), backoff_base=timedelta(seconds=30), max_attempts=3,
                       timeout_s=5)
    hub = Hub.build(engine, clock=clock, blob_root=tmp_path / "b", notify=cfg)
    users = {"sam": hub.users.add("sam", Role.SUPPORT, email="sam@vendor.test")[0],
             "erin": hub.users.add("erin", Role.ENGINEER, email="erin@vendor.test")[0],
             "max": hub.users.add("max", Role.MANAGER, email="max@vendor.test")[0]}
    case = hub.cases.create(users["sam"], NewCase(
        "Gateway OOM", "p", "7.2", "acme", CaseSeverity.S1, FULL, calendar="24x7",
        participants=(Participant("Carl", ParticipantRole.CUSTOMER_CONTACT, "carl@acme.test"),
                      Participant("Vera", ParticipantRole.WATCHER, "vera@vendor.test"))))
    disp = Dispatcher(engine, cfg, clock)
    return hub, users, case, disp, inbox, got, state, clock


def _by_rcpt(inbox):
    return {tuple(r): m for r, m in inbox.messages}


def test_customer_and_internal_templates(world):
    hub, u, case, disp, inbox, got, _s, _c = world
    hub.cases.assign(u["max"], case.key, "erin")
    disp.deliver_due()
    inbox.messages.clear()
    hub.cases.add_note(u["erin"], case.key, "Internal: heap dump shows the pool leak", "internal")
    disp.deliver_due()
    rcpts = {r for rs, _m in inbox.messages for r in rs}
    assert "carl@acme.test" not in rcpts                     # internal notes never reach customers
    assert rcpts == {"vera@vendor.test"}                     # erin wrote it; the watcher hears of it
    inbox.messages.clear()
    hub.cases.add_note(u["erin"], case.key, "We found the cause and are preparing a fix.", "public")
    disp.deliver_due()
    mails = _by_rcpt(inbox)
    cust = mails[("carl@acme.test",)]
    assert cust["X-Backline-Audience"] == "customer"
    assert cust["Subject"] == f"[{case.key}] Gateway OOM - new note"
    body = cust.get_payload()
    assert "We found the cause" in body and "heap dump" not in body and "internal" not in body.lower()
    internal = mails[("vera@vendor.test",)]
    assert internal["X-Backline-Audience"] == "internal" and "public note" in internal.get_payload()


def test_status_change_mail_and_signed_webhooks(world):
    hub, u, case, disp, inbox, got, _s, _c = world
    hub.cases.set_status(u["erin"], case.key, "investigating")
    counts = disp.deliver_due()
    assert counts["failed"] == 0 and counts["retry"] == 0
    cust = _by_rcpt(inbox)[("carl@acme.test",)]
    assert "being investigated" in cust.get_payload()
    events = []
    for headers, body in got:
        sig = headers["X-Backline-Signature"]
        assert sig == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        events.append(json.loads(body)["event"])
    assert events == ["case.created", "case.status_changed"]
    last = json.loads(got[-1][1])
    assert last["case"]["key"] == case.key and last["data"] == {"before": "new", "after": "investigating",
                                                                "reason": None}


def test_webhook_retries_with_backoff(world):
    hub, u, case, disp, inbox, got, state, clock = world
    disp.deliver_due()
    got.clear()
    state["fail_first"] = 2
    hub.cases.set_status(u["erin"], case.key, "investigating")
    assert disp.deliver_due()["retry"] == 1 and got == []
    assert disp.deliver_due()["retry"] == 0                  # not due yet: backoff 30 s
    clock.advance(seconds=31)
    assert disp.deliver_due()["retry"] == 1                  # second failure, next wait 60 s
    clock.advance(seconds=31)
    assert disp.deliver_due() == {"sent": 0, "retry": 0, "failed": 0}
    clock.advance(seconds=30)
    assert disp.deliver_due()["sent"] >= 1
    assert [json.loads(b)["event"] for _h, b in got] == ["case.status_changed"]


def test_gives_up_after_max_attempts(world):
    hub, u, case, disp, inbox, got, state, clock = world
    disp.deliver_due()
    state["fail_first"] = 100
    hub.cases.set_status(u["erin"], case.key, "investigating")
    results = []
    for _ in range(4):
        results.append(disp.deliver_due())
        clock.advance(hours=1)
    assert sum(r["failed"] for r in results) == 1 and sum(r["retry"] for r in results) == 2


def test_sla_warning_then_owner_then_manager(world):
    hub, u, case, disp, inbox, got, _s, clock = world
    hub.cases.assign(u["max"], case.key, "erin")
    disp.deliver_due()
    inbox.messages.clear()
    clock.advance(minutes=50)                                    # S1 first response 60 min: warning
    sent = sla_sweep(hub.cases)
    assert [(s["clock"], s["event"], s["recipients"]) for s in sent] == [
        ("first_response", "sla.warning", ["erin@vendor.test"])]
    assert sla_sweep(hub.cases) == []                            # once only
    clock.advance(minutes=15)
    breach = [s for s in sla_sweep(hub.cases) if s["clock"] == "first_response"]
    assert breach[0]["level"] == 1 and breach[0]["recipients"] == ["erin@vendor.test"]
    clock.advance(minutes=60)
    breach = [s for s in sla_sweep(hub.cases) if s["clock"] == "first_response"]
    assert breach[0]["level"] == 2 and breach[0]["recipients"] == ["erin@vendor.test", "max@vendor.test"]
    disp.deliver_due()
    subjects = [m["Subject"] for _r, m in inbox.messages]
    assert any("SLA first_response breached" in s for s in subjects)
