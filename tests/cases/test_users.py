"""The per-process token cache that lets the API authenticate without a database round trip."""

from datetime import datetime, timedelta, timezone

import pytest

from backline.cases.model import Role
from backline.cases.users import UserStore
from backline.errors import PermissionDenied


def test_cached_lookup_needs_a_database_lookup_first_and_honours_expiry(engine):
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)]
    users = UserStore(engine, clock=lambda: now[0])
    erin, token = users.add("erin", Role.ENGINEER, ttl=timedelta(hours=1))
    assert users.authenticate_cached(token) is None            # never looked up in this process
    assert users.authenticate(token).name == "erin"             # the database lookup fills the cache
    assert users.authenticate_cached(token) == erin
    assert users.authenticate_cached("bl_wrong") is None        # unknown tokens are never cached
    with pytest.raises(PermissionDenied):
        users.authenticate_cached("")
    now[0] += timedelta(hours=2)                                 # the token expires while cached
    with pytest.raises(PermissionDenied, match="expired"):
        users.authenticate_cached(token)
    with pytest.raises(PermissionDenied, match="expired"):
        users.authenticate(token)


def test_rotation_clears_the_cache(engine):
    users = UserStore(engine)
    _, token = users.add("sam", Role.SUPPORT, team="emea")
    users.authenticate(token)
    users.rotate("sam")
    assert users.authenticate_cached(token) is None
    with pytest.raises(PermissionDenied):
        users.authenticate(token)
