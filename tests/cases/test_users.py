"""Users: API tokens (read from the database on every lookup, so revocation is immediate),
passwords (Argon2id), and web sessions with rate-limited logins."""

from datetime import datetime, timedelta, timezone

import pytest

from backline.cases.model import Role
from backline.cases.sessions import LoginLimits, LoginRefused, LoginThrottled, SessionStore
from backline.cases.users import UserStore, hash_password
from backline.errors import PermissionDenied, UsageError

PASSWORD = "correct horse battery"
_HASH: list[str] = []


def _with_password(users: UserStore, name: str, role: str) -> None:
    """A user whose password is PASSWORD; the Argon2 hash is made once per test process (hashing
    is tested above; every login below still verifies it)."""
    from sqlalchemy import update

    from backline.storage import tables as T
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    users.add(name, role)
    with users.engine.begin() as conn:
        conn.execute(update(T.users).where(T.users.c.name == name).values(password_hash=_HASH[0]))


def test_token_expiry_rotation_and_disabling_take_effect_on_the_next_lookup(engine):
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)]
    users = UserStore(engine, clock=lambda: now[0])
    _, token = users.add("erin", Role.ENGINEER, ttl=timedelta(hours=1))
    assert users.authenticate(token).name == "erin"
    with pytest.raises(PermissionDenied):
        users.authenticate("bl_wrong")
    with pytest.raises(PermissionDenied):
        users.authenticate("")
    now[0] += timedelta(hours=2)
    with pytest.raises(PermissionDenied, match="expired"):
        users.authenticate(token)
    new = users.rotate("erin")
    assert users.authenticate(new).name == "erin"
    with pytest.raises(PermissionDenied, match="invalid"):
        users.authenticate(token)                     # the old token stops at once
    users.set_active("erin", False)
    with pytest.raises(PermissionDenied, match="disabled"):
        users.authenticate(new)
    users.set_active("erin", True)
    assert users.authenticate(new).name == "erin"


def test_passwords_are_argon2_hashes_and_checked(engine):
    users = UserStore(engine)
    users.add("ada", Role.ENGINEER, password="correct horse battery")
    users.add("bob", Role.ENGINEER)                   # no password: no web login
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT password_hash FROM users WHERE name = 'ada'").scalar()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert users.check_password("ada", "correct horse battery").name == "ada"
    assert users.check_password("ada", "correct horse batterY") is None
    assert users.check_password("bob", "anything at all") is None
    assert users.check_password("nobody", "correct horse battery") is None
    with pytest.raises(UsageError, match="8"):
        users.set_password("ada", "short")
    users.set_password("ada", "a new passphrase")
    assert users.check_password("ada", "correct horse battery") is None
    assert users.check_password("ada", "a new passphrase") is not None


def test_sessions_rotate_at_login_end_at_logout_and_with_the_user(engine):
    users = UserStore(engine)
    _with_password(users, "ada", Role.ENGINEER)
    sessions = SessionStore(engine, users)
    first, s1 = sessions.login("ada", "correct horse battery", "10.0.0.1")
    second, s2 = sessions.login("ada", "correct horse battery", "10.0.0.1", previous=first)
    assert first != second and s1.csrf_token != s2.csrf_token
    assert sessions.lookup(first) is None             # the id the browser had before is ended
    assert sessions.lookup(second).user.name == "ada"
    with engine.connect() as conn:                    # only the hash is stored
        hashes = [r[0] for r in conn.exec_driver_sql("SELECT session_hash FROM web_sessions")]
    assert second not in hashes and len(hashes) == 2
    users.set_active("ada", False)
    assert sessions.lookup(second) is None
    users.set_active("ada", True)
    assert sessions.lookup(second) is None            # disabling ended it for good
    third, _ = sessions.login("ada", "correct horse battery", "10.0.0.1")
    users.set_password("ada", "another passphrase")
    assert sessions.lookup(third) is None             # a password change ends every session
    fourth, _ = sessions.login("ada", "another passphrase", "10.0.0.1")
    sessions.end(fourth)
    assert sessions.lookup(fourth) is None
    assert sessions.lookup("not a session") is None and sessions.lookup(None) is None


def test_sessions_expire(engine):
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)]
    users = UserStore(engine, clock=lambda: now[0])
    _with_password(users, "ada", Role.ENGINEER)
    sessions = SessionStore(engine, users, ttl=timedelta(hours=1))
    sid, _ = sessions.login("ada", "correct horse battery", None)
    assert sessions.lookup(sid) is not None
    now[0] += timedelta(minutes=61)
    assert sessions.lookup(sid) is None


def test_failed_logins_are_limited_per_user_and_per_address(engine):
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)]
    users = UserStore(engine, clock=lambda: now[0])
    _with_password(users, "ada", Role.ENGINEER)
    _with_password(users, "bob", Role.ENGINEER)
    limits = LoginLimits(window=timedelta(minutes=15), max_per_user=2, max_per_address=3)
    sessions = SessionStore(engine, users, limits=limits)
    for _ in range(2):
        with pytest.raises(LoginRefused):
            sessions.login("ada", "wrong password", "10.0.0.1")
    with pytest.raises(LoginThrottled) as exc:        # locked: even the right password is refused
        sessions.login("ada", "correct horse battery", "10.0.0.2")
    assert 0 < exc.value.retry_after <= 15 * 60 + 1
    assert sessions.login("bob", "correct horse battery", "10.0.0.2")[1].user.name == "bob"
    with pytest.raises(LoginRefused):                  # the address reaches 3 failures over two names
        sessions.login("bob", "wrong password", "10.0.0.1")
    with pytest.raises(LoginThrottled, match="address"):
        sessions.login("carl", "whatever it is", "10.0.0.1")
    now[0] += timedelta(minutes=16)                    # the window has passed
    assert sessions.login("ada", "correct horse battery", "10.0.0.1")[1].user.name == "ada"
