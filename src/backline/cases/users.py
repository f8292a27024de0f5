"""Users and their API tokens.

A token is shown once, when the user is made; only its sha256 is stored.

>>> import tempfile, pathlib
>>> from backline.storage.db import make_engine, upgrade
>>> eng = make_engine(f"sqlite:///{pathlib.Path(tempfile.mkdtemp())}/u.db"); upgrade(eng)
>>> users = UserStore(eng)
>>> user, token = users.add("ada", Role.ENGINEER)
>>> users.authenticate(token).name
'ada'
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import insert, select, update
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


#: How long a successful token lookup is remembered in this process (disabling a user or
#: rotating a token takes at most this long to reach every server process).
AUTH_CACHE_SECONDS = 5.0
_AUTH_CACHE_MAX = 10_000


class UserStore:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = _now,
                 cache_seconds: float = AUTH_CACHE_SECONDS):
        self.engine = engine
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, User, datetime | None]] = {}

    def add(self, name: str, role: Role | str, *, org: str | None = None, team: str | None = None,
            email: str | None = None, ttl: timedelta | None = None) -> tuple[User, str]:
        """Make a user; returns it with its new API token."""
        role = _role(role)
        if not _NAME.match(name or ""):
            raise UsageError(f"invalid user name {name!r} (letters, digits, . _ @ - and spaces)")
        if role is Role.CUSTOMER and not org:
            raise UsageError("a customer needs --org (the organisation whose cases they see)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                uid = conn.execute(insert(T.users).values(
                    name=name, role=role.value, org=org, team=team, email=email,
                    token_hash=hash_token(token), token_expires_at=(now + ttl) if ttl else None,
                    active=True, created_at=now)).inserted_primary_key[0]
        except IntegrityError:
            raise UsageError(f"user {name!r} already exists") from None
        return User(uid, name, role, org, team, email), token

    def rotate(self, name: str, ttl: timedelta | None = None) -> str:
        """A new token for ``name``; the old one stops working."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as conn:
            n = conn.execute(update(T.users).where(T.users.c.name == name).values(
                token_hash=hash_token(token), token_expires_at=(now + ttl) if ttl else None)).rowcount
        if not n:
            raise UsageError(f"no user {name!r}")
        self._cache.clear()
        return token

    def authenticate_cached(self, token: str | None) -> User | None:
        """The user holding ``token`` if this process looked it up in the last few seconds,
        else None; no database access (so the API can call it on its event loop).
        Raises PermissionDenied like :meth:`authenticate` for a missing or expired token."""
        if not token:
            raise PermissionDenied("missing API token (send 'Authorization: Bearer <token>')")
        hit = self._cache.get(hash_token(token))
        if hit is not None and time.monotonic() - hit[0] < self.cache_seconds:
            if hit[2] is not None and hit[2] <= self.clock():
                raise PermissionDenied("API token expired")
            return hit[1]
        return None

    def authenticate(self, token: str | None) -> User:
        """The user holding ``token``; PermissionDenied when missing, wrong, expired or disabled."""
        if not token:
            raise PermissionDenied("missing API token (send 'Authorization: Bearer <token>')")
        cached = self.authenticate_cached(token)
        if cached is not None:
            return cached
        digest = hash_token(token)
        with read_engine(self.engine).connect() as conn:
            row = conn.execute(select(T.users).where(T.users.c.token_hash == digest)).mappings().first()
        if row is None:
            raise PermissionDenied("invalid API token")
        if not row["active"]:
            raise PermissionDenied("user is disabled")
        exp = utc(row["token_expires_at"])
        if exp is not None and exp <= self.clock():
            raise PermissionDenied("API token expired")
        user = row_to_user(row)
        if self.cache_seconds > 0:
            if len(self._cache) >= _AUTH_CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (time.monotonic(), user, exp)
        return user

    def get(self, name: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(select(T.users).where(T.users.c.name == name)).mappings().first()
        if row is None:
            raise UsageError(f"no user {name!r}")
        return row_to_user(row)

    def list(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(T.users).order_by(T.users.c.id)).mappings().all()
        return [row_to_user(r) for r in rows]


def row_to_user(row) -> User:
    return User(row["id"], row["name"], Role(row["role"]), row["org"], row["team"], row["email"])


def _role(role: Role | str) -> Role:
    if isinstance(role, Role):
        return role
    try:
        return Role(str(role).lower())
    except ValueError:
        raise UsageError(f"unknown role {role!r}; use one of {', '.join(r.value for r in Role)}") from None
