"""Alembic migrations: a fresh database and an upgrade from the first revision both reach
the schema the code expects, on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, insert, inspect, select, text

from backline.storage import tables as T
from backline.storage.db import HEAD, current_revision, make_engine, upgrade
from backline.storage.testdb import PG_URL
from backline.errors import StorageError


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_engine(request, tmp_path):
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield eng
        eng.dispose()
        return
    name = f"bl_m_{secrets.token_hex(5)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE SCHEMA "{name}"'))
    eng = make_engine(PG_URL, schema=name, pool_size=2)
    try:
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def _not_fts(name, type_, _parent):
    """The lexical index (``case_fts`` and FTS5's shadow tables) is made per dialect, outside the metadata."""
    return not (type_ == "table" and name.startswith("case_fts"))


def _diff(engine):
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"include_name": _not_fts}), T.metadata)


def test_fresh_database_matches_the_tables(empty_engine):
    assert current_revision(empty_engine) is None
    upgrade(empty_engine)
    assert current_revision(empty_engine) == HEAD
    assert _diff(empty_engine) == []
    upgrade(empty_engine)                       # idempotent
    assert current_revision(empty_engine) == HEAD


def test_upgrade_keeps_data(empty_engine):
    upgrade(empty_engine, "0001")
    assert "hotfixes" not in inspect(empty_engine).get_table_names()
    assert "case_facts" not in inspect(empty_engine).get_table_names()
    now = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
    with empty_engine.begin() as conn:
        uid = conn.execute(insert(T.users).values(name="erin", role="engineer", token_hash="0" * 64, active=True,
                                                  created_at=now)).inserted_primary_key[0]
        conn.execute(insert(T.cases).values(
            key="ESC-1001", title="Old case", product="p", version="1", org="acme", severity="S2", status="new",
            co_owners=[], created_by=uid, created_at=now, updated_at=now, row_version=1, intake={"a": "b"},
            intake_score=1.0, intake_missing=[], sla_policy="default", returned_for_info=False))
    upgrade(empty_engine)
    assert current_revision(empty_engine) == HEAD and _diff(empty_engine) == []
    with empty_engine.connect() as conn:
        row = conn.execute(select(T.cases)).mappings().one()
    assert row["key"] == "ESC-1001" and row["intake"] == {"a": "b"}


def test_sqlite_is_in_wal_mode(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_bad_urls_are_clear_errors():
    with pytest.raises(StorageError, match="unsupported database URL"):
        make_engine("mysql://x@y/z")
    eng = make_engine("postgresql+psycopg://nobody:pw@127.0.0.1:1/none")
    with pytest.raises(StorageError) as err:
        upgrade(eng)
    assert "pw" not in str(err.value)


def test_audit_log_is_append_only(empty_engine):
    from sqlalchemy.exc import DBAPIError
    upgrade(empty_engine)
    now = datetime(2026, 11, 23, 9, tzinfo=timezone.utc)
    with empty_engine.begin() as conn:
        conn.execute(insert(T.audit_log).values(at=now, actor="erin", entity="case", entity_id="ESC-1",
                                                action="create", before=None, after={"a": 1}))
    for stmt in (T.audit_log.update().values(actor="mallory"), T.audit_log.delete()):
        with pytest.raises(DBAPIError, match="append-only"):
            with empty_engine.begin() as conn:
                conn.execute(stmt)
    with empty_engine.connect() as conn:
        assert conn.execute(select(T.audit_log.c.actor)).scalars().all() == ["erin"]
