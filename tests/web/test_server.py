"""The server process's background work and settings (web/server.py)."""

from __future__ import annotations

import io
import json
import socket
import time

import pytest
from aiosmtpd.controller import Controller

from backline.cases.hub import Hub
from backline.cases.model import CaseSeverity, Participant, ParticipantRole, Role
from backline.cases.notify import NotifyConfig
from backline.cases.service import NewCase
from backline.errors import UsageError
from backline.web.server import Background, notify_config_from_env

FULL = {"symptoms": "x" * 20, "business_impact": "y" * 20, "environment": "z" * 10, "steps_to_reproduce": "s" * 20,
        "already_tried": "t" * 10, "expected": "ok!", "actual": "bad", "evidence": ["a"]}


def test_notify_config_from_env(tmp_path, monkeypatch):
    monkeypatch.delenv("BACKLINE_NOTIFY_CONFIG", raising=False)
    assert notify_config_from_env() is None
    good = tmp_path / "n.json"
    good.write_text(json.dumps({"smtp_host": "127.0.0.1", "smtp_port": 2525,
                                "webhooks": [{"url": "http://127.0.0.1:9/h", "secret": "k", "events": ["note.created"]}]}))
    monkeypatch.setenv("BACKLINE_NOTIFY_CONFIG", str(good))
    cfg = notify_config_from_env()
    assert cfg.smtp_port == 2525 and cfg.webhooks[0].events == frozenset({"note.created"})
    bad = tmp_path / "bad.json"
    bad.write_text('{"webhooks": [{"url": "x"}]}')
    monkeypatch.setenv("BACKLINE_NOTIFY_CONFIG", str(bad))
    with pytest.raises(UsageError, match="bad.json"):
        notify_config_from_env()


class Inbox:
    def __init__(self):
        self.rcpts = []

    async def handle_DATA(self, server, session, envelope):
        self.rcpts.extend(envelope.rcpt_tos)
        return "250 OK"


def test_background_delivers_mail_and_runs_jobs(engine, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        hub = Hub.build(engine, blob_root=tmp_path / "b", notify=NotifyConfig(smtp_host="127.0.0.1", smtp_port=port))
        erin, _ = hub.users.add("erin", Role.ENGINEER, email="erin@vendor.test")
        case = hub.cases.create(erin, NewCase("t", "p", "1", "acme", CaseSeverity.S2, FULL, participants=(
            Participant("Carl", ParticipantRole.CUSTOMER_CONTACT, "carl@acme.test"),)))
        hub.cases.set_status(erin, case.key, "investigating")
        hub.evidence.upload(erin, case.key, "app.log", io.BytesIO(b"2026-11-23 10:00:00 ERROR boom\n"))
        bg = Background(hub, period_s=0.05)
        bg.start()
        try:
            for _ in range(300):
                done = hub.evidence.list(erin, case.key)[0].job_status == "done"
                if "carl@acme.test" in inbox.rcpts and done:
                    break
                time.sleep(0.05)
        finally:
            bg.stop()
        assert "carl@acme.test" in inbox.rcpts
        assert hub.evidence.list(erin, case.key)[0].job_status == "done"
    finally:
        ctl.stop()
