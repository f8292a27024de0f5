"""Communication: e-mail (SMTP) and webhooks (HMAC-signed JSON) on case events.

Case events are turned into messages *inside the writing transaction* and
kept in the ``outbox`` table, so a message exists exactly when its change
does.  :class:`Dispatcher` delivers due messages and retries failures with
exponential backoff.  Customers get the customer-facing template (public
notes and status changes only); owners, co-owners and watchers get the
internal template; webhooks get every subscribed event.

>>> sign(b"secret", b'{"a":1}')
'sha256=...'
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Callable

import httpx
from jinja2 import Environment, PackageLoader, StrictUndefined
from sqlalchemy import Connection, insert, select, update

from backline.cases.model import CaseStatus, Role, User
from backline.cases.service import CaseService, EventSink
from backline.model.core import utc
from backline.storage import tables as T

_STATUS_TEXT = {
    "needs_info": "waiting for more information from you", "new": "in the escalation queue",
    "investigating": "being investigated", "waiting_customer": "waiting for your reply",
    "waiting_development": "with our development team", "fix_pending": "fix in progress",
    "resolved": "resolved", "closed": "closed",
}
CUSTOMER_EVENTS = frozenset({"note.created", "case.status_changed"})


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Backline-Signature`` header value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret: str
    events: frozenset[str] = frozenset()        # empty: every event


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_starttls: bool = False
    sender: str = "backline@localhost"
    webhooks: tuple[Webhook, ...] = ()
    max_attempts: int = 6
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(hours=1)
    timeout_s: float = 10.0
    base_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "NotifyConfig":
        hooks = tuple(Webhook(h["url"], h["secret"], frozenset(h.get("events", ()))) for h in data.get("webhooks", ()))
        return cls(smtp_host=data.get("smtp_host"), smtp_port=int(data.get("smtp_port", 25)),
                   smtp_starttls=bool(data.get("smtp_starttls", False)),
                   sender=data.get("sender", "backline@localhost"), webhooks=hooks,
                   max_attempts=int(data.get("max_attempts", 6)))


_env = Environment(loader=PackageLoader("backline.cases", "data/templates"), undefined=StrictUndefined,
                   autoescape=False, keep_trailing_newline=True)


def render(template: str, **ctx: Any) -> tuple[str, str]:
    """(subject, body) from a ``Subject:``-first template."""
    text = _env.get_template(template).render(**ctx)
    first, _, body = text.partition("\n")
    return first.removeprefix("Subject: ").strip(), body.lstrip("\n")


class Notifier(EventSink):
    """Queues messages for case events (an :class:`EventSink` for :class:`CaseService`)."""

    def __init__(self, config: NotifyConfig, clock: Callable[[], datetime]):
        self.config = config
        self.clock = clock

    def emit(self, conn: Connection, event: str, case_row: dict[str, Any], actor: User,
             data: dict[str, Any]) -> None:
        now = utc(self.clock())
        case = {k: case_row[k] for k in ("key", "title", "status", "severity", "org", "product", "version")}
        fresh = conn.execute(select(T.cases.c.status).where(T.cases.c.id == case_row["id"])).scalar()
        case["status"] = fresh or case["status"]
        rows: list[dict[str, Any]] = []
        public_note = event == "note.created" and data.get("visibility") == "public" and actor.role.is_staff
        if self.config.smtp_host:
            ctx = dict(case=case, event=event, data=data, actor=actor.name,
                       status_text=_STATUS_TEXT.get(case["status"], case["status"]))
            if event == "case.status_changed" or public_note:
                subject, body = render("customer_update.txt.j2", headline=_headline(event, data, case), **ctx)
                for email in self._emails(conn, case_row["id"], customer=True):
                    rows.append(_row("email", email, event, {"subject": subject, "body": body,
                                                             "audience": "customer"}, now))
            subject, body = render("internal_notification.txt.j2", headline=_headline(event, data, case), **ctx)
            for email in self._emails(conn, case_row["id"], customer=False, owner_id=case_row.get("owner_id"),
                                      exclude=actor.email):
                rows.append(_row("email", email, event, {"subject": subject, "body": body,
                                                         "audience": "internal"}, now))
        for hook in self.config.webhooks:
            if not hook.events or event in hook.events:
                rows.append(_row("webhook", hook.url, event,
                                 {"event": event, "at": now.isoformat(), "actor": actor.name,
                                  "case": case, "data": _plain(data)}, now))
        if rows:
            conn.execute(insert(T.outbox), rows)

    def _emails(self, conn: Connection, case_id: int, *, customer: bool, owner_id: int | None = None,
                exclude: str | None = None) -> list[str]:
        q = select(T.participants.c.email, T.participants.c.role).where(T.participants.c.case_id == case_id)
        out: list[str] = []
        for email, role in conn.execute(q):
            if email and (role == "customer_contact") == customer:
                out.append(email)
        if not customer and owner_id is not None:
            owner_mail = conn.execute(select(T.users.c.email).where(T.users.c.id == owner_id)).scalar()
            if owner_mail:
                out.append(owner_mail)
        return [e for e in dict.fromkeys(out) if e != exclude]


def _headline(event: str, data: dict[str, Any], case: dict[str, Any]) -> str:
    return {"note.created": "new note", "case.status_changed": f"status {case['status']}",
            "case.created": "new escalation", "case.assigned": f"assigned to {data.get('owner')}",
            "case.updated": "updated"}.get(event, event)


def _row(channel: str, target: str, event: str, payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"channel": channel, "target": target, "event": event, "payload": payload, "status": "pending",
            "attempts": 0, "next_attempt_at": now, "last_error": None, "created_at": now}


def _plain(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))


class Dispatcher:
    """Delivers due outbox messages; failures are retried with exponential backoff."""

    def __init__(self, engine, config: NotifyConfig, clock: Callable[[], datetime]):
        self.engine = engine
        self.config = config
        self.clock = clock

    def recover(self) -> int:
        """Messages a stopped server was sending go back to pending (sent at least once)."""
        with self.engine.begin() as conn:
            return conn.execute(update(T.outbox).where(T.outbox.c.status == "sending")
                                .values(status="pending")).rowcount

    def deliver_due(self, limit: int = 100) -> dict[str, int]:
        now = utc(self.clock())
        counts = {"sent": 0, "retry": 0, "failed": 0}
        with self.engine.connect() as conn:
            due = conn.execute(select(T.outbox).where(T.outbox.c.status == "pending",
                                                      T.outbox.c.next_attempt_at <= now)
                               .order_by(T.outbox.c.id).limit(limit)).mappings().all()
        for msg in due:
            with self.engine.begin() as conn:          # claim it, so two servers never send it twice
                claimed = conn.execute(update(T.outbox).where(T.outbox.c.id == msg["id"],
                                                              T.outbox.c.status == "pending")
                                       .values(status="sending")).rowcount
            if not claimed:
                continue
            try:
                if msg["channel"] == "email":
                    self._send_email(msg)
                else:
                    self._post_webhook(msg)
            except (OSError, smtplib.SMTPException, httpx.HTTPError, WebhookRefused) as exc:
                attempts = msg["attempts"] + 1
                failed = attempts >= self.config.max_attempts
                delay = min(self.config.backoff_base * (2 ** (attempts - 1)), self.config.backoff_max)
                with self.engine.begin() as conn:
                    conn.execute(update(T.outbox).where(T.outbox.c.id == msg["id"]).values(
                        attempts=attempts, status="failed" if failed else "pending",
                        next_attempt_at=now + delay, last_error=f"{type(exc).__name__}: {exc}"[:2000]))
                counts["failed" if failed else "retry"] += 1
                continue
            with self.engine.begin() as conn:
                conn.execute(update(T.outbox).where(T.outbox.c.id == msg["id"]).values(
                    status="sent", attempts=msg["attempts"] + 1, last_error=None))
            counts["sent"] += 1
        return counts

    def _send_email(self, msg) -> None:
        p = msg["payload"]
        em = EmailMessage()
        em["From"] = self.config.sender
        em["To"] = msg["target"]
        em["Subject"] = p["subject"]
        em["X-Backline-Event"] = msg["event"]
        em["X-Backline-Audience"] = p.get("audience", "internal")
        em.set_content(p["body"])
        with smtplib.SMTP(self.config.smtp_host, self.config.smtp_port, timeout=self.config.timeout_s) as s:
            if self.config.smtp_starttls:
                s.starttls(context=ssl.create_default_context())
            s.send_message(em)

    def _post_webhook(self, msg) -> None:
        hook = next((h for h in self.config.webhooks if h.url == msg["target"]), None)
        if hook is None:
            raise WebhookRefused("webhook no longer configured")
        body = json.dumps(msg["payload"], separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "X-Backline-Event": msg["event"],
                   "X-Backline-Delivery": str(msg["id"]), "X-Backline-Signature": sign(hook.secret.encode(), body)}
        r = httpx.post(hook.url, content=body, headers=headers, timeout=self.config.timeout_s)
        if r.status_code >= 300:
            raise WebhookRefused(f"HTTP {r.status_code}")


class WebhookRefused(Exception):
    pass


def sla_sweep(cases: CaseService, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Warn and escalate SLA clocks of open cases: owner first, then managers.

    Each (case, clock, level, deadline) is notified once; returns what was queued.
    """
    now = now or cases._now()
    out: list[dict[str, Any]] = []
    open_states = [s.value for s in CaseStatus if s.is_open]
    with cases.engine.begin() as conn:
        rows = conn.execute(select(T.cases).where(T.cases.c.status.in_(open_states))).mappings().all()
        managers = [e for (e,) in conn.execute(select(T.users.c.email).where(T.users.c.role == Role.MANAGER.value,
                                                                             T.users.c.active.is_(True))) if e]
        for row in rows:
            for clock in cases.clocks_for_row(conn, row, now):
                if clock.state not in ("warning", "breached") or clock.deadline is None:
                    continue
                level = clock.escalation_level if clock.state == "breached" else 0
                seen = conn.execute(select(T.sla_notifications.c.id).where(
                    T.sla_notifications.c.case_id == row["id"], T.sla_notifications.c.clock == clock.name,
                    T.sla_notifications.c.level == level, T.sla_notifications.c.deadline == clock.deadline)).first()
                if seen:
                    continue
                conn.execute(insert(T.sla_notifications).values(case_id=row["id"], clock=clock.name, level=level,
                                                                deadline=clock.deadline, at=now))
                who: list[str] = []
                if row["owner_id"] is not None:
                    mail = conn.execute(select(T.users.c.email).where(T.users.c.id == row["owner_id"])).scalar()
                    who += [mail] if mail else []
                if level >= 2 or "manager" in clock.notify:
                    who += managers
                data = {"clock": clock.name, "state": clock.state, "deadline": clock.deadline.isoformat(),
                        "level": level}
                event = "sla.warning" if level == 0 else "sla.breach"
                item = {"case": row["key"], "event": event, "recipients": list(dict.fromkeys(who)), **data}
                out.append(item)
                if cases.events is not None and isinstance(cases.events, Notifier) and cases.events.config.smtp_host:
                    case = {k: row[k] for k in ("key", "title", "status", "severity", "org", "product", "version")}
                    subject, body = render("internal_notification.txt.j2", case=case, event=event, data=data,
                                           actor="SLA", headline=f"SLA {clock.name} {clock.state}",
                                           status_text=row["status"])
                    rows_ = [_row("email", m, event, {"subject": subject, "body": body, "audience": "internal"}, now)
                             for m in item["recipients"]]
                    if rows_:
                        conn.execute(insert(T.outbox), rows_)
    return out
