"""Web sessions: log in with a password, look a session up on every request, log out.

The browser holds a random session id (``secrets.token_urlsafe(32)``); the
database holds only its sha256, the user, a CSRF token, the expiry and when it
ended.  A new id is made at every login (an id a browser had before logging in
is never promoted).  Every request reads the session, its user and whether the
user is still active in one query, so a logout, a disabled user or a changed
password ends the session at once in every server process.

Failed logins are rate-limited per user name and per client address with
counters in the database (``login_attempts``), so the limits hold across
server processes: after ``max_per_user`` failures within ``window`` the name is
locked until the oldest of them is older than the window, and likewise for an
address with ``max_per_address``.  While locked, even the right password is
refused.

>>> import tempfile, pathlib
>>> from backline.storage.db import make_engine, upgrade
>>> from backline.cases.users import UserStore
>>> eng = make_engine(f"sqlite:///{pathlib.Path(tempfile.mkdtemp())}/s.db"); upgrade(eng)
>>> users = UserStore(eng); _ = users.add("ada", "engineer", password="a long passphrase")
>>> sessions = SessionStore(eng, users)
>>> sid, s = sessions.login("ada", "a long passphrase", "127.0.0.1")
>>> sessions.lookup(sid).user.name
'ada'
>>> sessions.end(sid); sessions.lookup(sid) is None
True
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Engine

from backline.cases.model import Role, User
from backline.cases.users import UserStore
from backline.errors import PermissionDenied
from backline.model.core import utc
from backline.storage import tables as T
from backline.storage.db import read_engine

SESSION_TTL = timedelta(hours=12)


class LoginRefused(PermissionDenied):
    """Wrong name or password, or a disabled user (one message for all: names are not an oracle)."""


class LoginThrottled(PermissionDenied):
    """Too many failed logins for this name or address; ``retry_after`` seconds to wait."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class LoginLimits:
    window: timedelta = timedelta(minutes=15)
    max_per_user: int = 5
    max_per_address: int = 20


@dataclass(frozen=True, slots=True)
class WebSession:
    id: int
    user: User
    csrf_token: str
    expires_at: datetime


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


_S, _U = T.web_sessions.c, T.users.c
_LOOKUP = (select(_S.id, _S.csrf_token, _S.expires_at, _U.id.label("uid"), _U.name, _U.role, _U.org, _U.team,
                  _U.email)
           .join(T.users, _U.id == _S.user_id)
           .where(_S.session_hash == bindparam("h"), _S.ended_at.is_(None), _S.expires_at > bindparam("now"),
                  _U.active.is_(True)))


class SessionStore:
    def __init__(self, engine: Engine, users: UserStore, clock: Callable[[], datetime] | None = None,
                 *, ttl: timedelta = SESSION_TTL, limits: LoginLimits = LoginLimits()):
        self.engine = engine
        self.reader = read_engine(engine)
        self.users = users
        self.clock = clock or users.clock
        self.ttl = ttl
        self.limits = limits

    def _now(self) -> datetime:
        return utc(self.clock()) or datetime.now(timezone.utc)

    def login(self, name: str, password: str, address: str | None,
              previous: str | None = None) -> tuple[str, WebSession]:
        """Check the password and open a session; returns the new session id (for the cookie).

        ``previous`` is the session id the browser sent, if any: it is ended (the id always changes).
        Raises :class:`LoginThrottled` or :class:`LoginRefused`."""
        name = (name or "").strip()[:200]
        address = (address or "unknown")[:64]
        now = self._now()
        self._check_limits(name, address, now)
        user = self.users.check_password(name, password or "")
        if user is None:
            with self.engine.begin() as conn:
                conn.execute(insert(T.login_attempts), [{"kind": "user", "subject": name, "at": now},
                                                         {"kind": "addr", "subject": address, "at": now}])
                conn.execute(delete(T.login_attempts).where(T.login_attempts.c.at < now - 2 * self.limits.window))
            raise LoginRefused("wrong user name or password")
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            if previous:
                conn.execute(update(T.web_sessions).where(_S.session_hash == _hash(previous), _S.ended_at.is_(None))
                             .values(ended_at=now))
            conn.execute(delete(T.login_attempts).where(T.login_attempts.c.kind == "user",
                                                        T.login_attempts.c.subject == name))
            sid = conn.execute(insert(T.web_sessions).values(
                session_hash=_hash(session_id), user_id=user.id, csrf_token=csrf, created_at=now,
                expires_at=now + self.ttl, ended_at=None, address=address)).inserted_primary_key[0]
            conn.execute(insert(T.audit_log).values(at=now, actor_id=user.id, actor=user.name, case_id=None,
                                                    entity="session", entity_id=str(sid), action="login",
                                                    before=None, after={"address": address}))
        return session_id, WebSession(sid, user, csrf, now + self.ttl)

    def _check_limits(self, name: str, address: str, now: datetime) -> None:
        since = now - self.limits.window
        A = T.login_attempts.c
        with self.reader.connect() as conn:
            rows = conn.execute(select(A.kind, func.count(), func.min(A.at))
                                .where(A.at > since, ((A.kind == "user") & (A.subject == name))
                                       | ((A.kind == "addr") & (A.subject == address)))
                                .group_by(A.kind)).all()
        for kind, count, oldest in rows:
            limit = self.limits.max_per_user if kind == "user" else self.limits.max_per_address
            if count >= limit:
                wait = max(1, int((utc(oldest) + self.limits.window - now).total_seconds()) + 1)
                what = "this user name" if kind == "user" else "this address"
                raise LoginThrottled(f"too many failed logins for {what}; try again in "
                                     f"{(wait + 59) // 60} minute(s)", wait)

    def lookup(self, session_id: str | None) -> WebSession | None:
        """The live session with this id (not ended, not expired, user active), else None."""
        if not session_id or len(session_id) > 200:
            return None
        with self.reader.connect() as conn:
            r = conn.execute(_LOOKUP, {"h": _hash(session_id), "now": self._now()}).mappings().first()
        if r is None:
            return None
        user = User(r["uid"], r["name"], Role(r["role"]), r["org"], r["team"], r["email"])
        return WebSession(r["id"], user, r["csrf_token"], utc(r["expires_at"]))

    def end(self, session_id: str | None) -> None:
        """Log out: the session stops working at once."""
        if not session_id:
            return
        now = self._now()
        with self.engine.begin() as conn:
            row = conn.execute(select(_S.id, _S.user_id).where(_S.session_hash == _hash(session_id),
                                                               _S.ended_at.is_(None))).first()
            if row is None:
                return
            conn.execute(update(T.web_sessions).where(_S.id == row.id).values(ended_at=now))
            name = conn.execute(select(_U.name).where(_U.id == row.user_id)).scalar()
            conn.execute(insert(T.audit_log).values(at=now, actor_id=row.user_id, actor=name or "?", case_id=None,
                                                    entity="session", entity_id=str(row.id), action="logout",
                                                    before=None, after=None))
