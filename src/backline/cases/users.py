"""Users, their API tokens and their passwords.

A token is shown once, when the user is made; only its sha256 is stored.
Passwords (for the web workbench) are stored as Argon2id hashes
(``argon2-cffi``).  Every lookup reads the database: disabling a user or
rotating a token is refused on the very next request, in every server process.

>>> import tempfile, pathlib
>>> from backline.storage.db import make_engine, upgrade
>>> eng = make_engine(f"sqlite:///{pathlib.Path(tempfile.mkdtemp())}/u.db"); upgrade(eng)
>>> users = UserStore(eng)
>>> user, token = users.add("ada", Role.ENGINEER)
>>> users.authenticate(token).name
'ada'
>>> users.check_password("ada", "wrong") is None
True
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from backline.cases.model import Role, User
from backline.errors import PermissionDenied, UsageError
from backline.model.core import utc
from backline.storage import tables as T
from backline.storage.db import read_engine

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@ -]{0,199}$")
TOKEN_PREFIX = "bl_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


MIN_PASSWORD = 8
MAX_PASSWORD = 1024
_HASHER = PasswordHasher()          # Argon2id, RFC 9106 low-memory profile (argon2-cffi's default)
# verified against when the user does not exist, so a wrong name costs the same time as a wrong password
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` (refused when too short or too long).

    >>> h = hash_password("correct horse"); h.startswith("$argon2id$"), verify_password(h, "correct horse")
    (True, True)
    """
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UsageError(f"a password must be {MIN_PASSWORD}..{MAX_PASSWORD} characters")
    if "\x00" in password:
        raise UsageError("a password must not contain NUL characters")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class UserStore:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = _now):
        self.engine = engine
        self.reader = read_engine(engine)
        self.clock = clock

    def add(self, name: str, role: Role | str, *, org: str | None = None, team: str | None = None,
            email: str | None = None, ttl: timedelta | None = None,
            password: str | None = None) -> tuple[User, str]:
        """Make a user; returns it with its new API token.  ``password`` enables web login."""
        role = _role(role)
        if not _NAME.match(name or ""):
            raise UsageError(f"invalid user name {name!r} (letters, digits, . _ @ - and spaces)")
        if role is Role.CUSTOMER and not org:
            raise UsageError("a customer needs --org (the organisation whose cases they see)")
        pw_hash = hash_password(password) if password is not None else None
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                uid = conn.execute(insert(T.users).values(
                    name=name, role=role.value, org=org, team=team, email=email,
                    token_hash=hash_token(token), token_expires_at=(now + ttl) if ttl else None,
                    active=True, created_at=now, password_hash=pw_hash)).inserted_primary_key[0]
        except IntegrityError:
            raise UsageError(f"user {name!r} already exists") from None
        return User(uid, name, role, org, team, email), token

    def rotate(self, name: str, ttl: timedelta | None = None) -> str:
        """A new token for ``name``; the old one stops working at once."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as conn:
            n = conn.execute(update(T.users).where(T.users.c.name == name).values(
                token_hash=hash_token(token), token_expires_at=(now + ttl) if ttl else None)).rowcount
        if not n:
            raise UsageError(f"no user {name!r}")
        return token

    def set_password(self, name: str, password: str) -> None:
        """Set ``name``'s password; their open web sessions end."""
        pw_hash = hash_password(password)
        with self.engine.begin() as conn:
            uid = conn.execute(select(T.users.c.id).where(T.users.c.name == name)).scalar()
            if uid is None:
                raise UsageError(f"no user {name!r}")
            conn.execute(update(T.users).where(T.users.c.id == uid).values(password_hash=pw_hash))
            _end_sessions(conn, uid, self.clock())

    def set_active(self, name: str, active: bool) -> None:
        """Enable or disable ``name``; a disabled user's token and web sessions stop working at once."""
        with self.engine.begin() as conn:
            uid = conn.execute(select(T.users.c.id).where(T.users.c.name == name)).scalar()
            if uid is None:
                raise UsageError(f"no user {name!r}")
            conn.execute(update(T.users).where(T.users.c.id == uid).values(active=active))
            if not active:
                _end_sessions(conn, uid, self.clock())

    def check_password(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs and they are active, else None (same cost either way)."""
        with self.reader.connect() as conn:
            row = conn.execute(select(T.users).where(T.users.c.name == name)).mappings().first()
        ok = verify_password(row["password_hash"] if row is not None else None, password)
        if not ok or row is None or not row["active"]:
            return None
        return row_to_user(row)

    def authenticate(self, token: str | None) -> User:
        """The user holding ``token``; PermissionDenied when missing, wrong, expired or disabled.
        Always read from the database (one indexed lookup), so revocation is immediate."""
        if not token:
            raise PermissionDenied("missing API token (send 'Authorization: Bearer <token>')")
        with self.reader.connect() as conn:
            row = conn.execute(_BY_TOKEN, {"h": hash_token(token)}).mappings().first()
        if row is None:
            raise PermissionDenied("invalid API token")
        if not row["active"]:
            raise PermissionDenied("user is disabled")
        exp = utc(row["token_expires_at"])
        if exp is not None and exp <= self.clock():
            raise PermissionDenied("API token expired")
        return row_to_user(row)

    def get(self, name: str) -> User:
        with self.reader.connect() as conn:
            row = conn.execute(select(T.users).where(T.users.c.name == name)).mappings().first()
        if row is None:
            raise UsageError(f"no user {name!r}")
        return row_to_user(row)

    def list(self) -> list[User]:
        with self.reader.connect() as conn:
            rows = conn.execute(select(T.users).order_by(T.users.c.id)).mappings().all()
        return [row_to_user(r) for r in rows]


_U = T.users.c
_BY_TOKEN = select(_U.id, _U.name, _U.role, _U.org, _U.team, _U.email, _U.active, _U.token_expires_at).where(
    _U.token_hash == bindparam("h"))


def _end_sessions(conn, user_id: int, now: datetime) -> None:
    conn.execute(update(T.web_sessions).where(T.web_sessions.c.user_id == user_id,
                                              T.web_sessions.c.ended_at.is_(None)).values(ended_at=now))


def row_to_user(row) -> User:
    return User(row["id"], row["name"], Role(row["role"]), row["org"], row["team"], row["email"])


def _role(role: Role | str) -> Role:
    if isinstance(role, Role):
        return role
    try:
        return Role(str(role).lower())
    except ValueError:
        raise UsageError(f"unknown role {role!r}; use one of {', '.join(r.value for r in Role)}") from None
