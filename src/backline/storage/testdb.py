"""Database fixtures for the case service's tests (imported by their conftest files).

``db_url`` is parametrised over SQLite and PostgreSQL.  PostgreSQL tests get
a private schema per pytest worker (``bl_t_<worker>_<random>``), emptied
before each test and dropped at the end of the session, so parallel workers
and other suites sharing the server never see each other's tables.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from backline.storage import tables as T
from backline.storage.db import make_engine, upgrade

PG_URL = os.environ.get("BACKLINE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_admin_url() -> str:
    return PG_URL


@pytest.fixture(scope="session")
def pg_schema(tmp_path_factory):
    """A fresh PostgreSQL schema for this worker, migrated to head; dropped afterwards."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"bl_t_{worker}_{secrets.token_hex(4)}"
    admin = create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    except Exception as exc:  # noqa: BLE001 - report why PostgreSQL is unusable
        admin.dispose()
        pytest.fail(f"PostgreSQL at {PG_URL} not usable: {exc}")
    engine = make_engine(PG_URL, schema=name, pool_size=4)
    upgrade(engine)
    try:
        yield name, engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    eng.dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request, tmp_path, sqlite_template):
    """A migrated, empty database engine (SQLite file or PostgreSQL schema)."""
    if request.param == "sqlite":
        path = tmp_path / "backline.db"
        shutil.copy(sqlite_template, path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
    else:
        name, eng = request.getfixturevalue("pg_schema")
        truncate(eng)
        yield eng


def truncate(engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in T.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


class ManualClock:
    """A clock tests move by hand (SLA tests never sleep).

    >>> from datetime import datetime, timezone, timedelta
    >>> c = ManualClock(datetime(2026, 11, 23, 9, tzinfo=timezone.utc)); c.advance(minutes=5); c().minute
    5
    """

    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **delta) -> None:
        from datetime import timedelta
        self.now = self.now + timedelta(**delta)

    def set(self, when) -> None:
        self.now = when
