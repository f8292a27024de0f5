"""Database engines and schema migrations.

SQLite in ``BACKLINE_HOME`` is the default (WAL mode, foreign keys on);
PostgreSQL is used through a ``postgresql+psycopg://`` URL.  The schema is
only ever made by Alembic (:func:`upgrade`), so a fresh database and an old
one reach the same state by the same path.

>>> import tempfile, pathlib
>>> eng = make_engine(f"sqlite:///{pathlib.Path(tempfile.mkdtemp())}/t.db")
>>> upgrade(eng); current_revision(eng) == HEAD
True
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from backline.config import data_dir
from backline.errors import StorageError

HEAD = "0012"
_MIGRATIONS = Path(__file__).with_name("migrations")


def default_url() -> str:
    """``BACKLINE_DATABASE_URL``, else SQLite at ``BACKLINE_HOME/backline.db``."""
    env = os.environ.get("BACKLINE_DATABASE_URL")
    if env:
        return env
    home = data_dir()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'backline.db'}"


def make_engine(url: str | None = None, *, schema: str | None = None, pool_size: int = 10) -> Engine:
    """An engine for ``url``; ``schema`` sets the PostgreSQL search_path (tests use one per worker)."""
    url = url or default_url()
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            # pysqlite's own transaction handling defers BEGIN; take the write lock at BEGIN
            # so two writers never deadlock on a lock upgrade.
            @event.listens_for(engine, "connect")
            def _no_autobegin(dbapi_conn, _record):  # pragma: no cover
                dbapi_conn.isolation_level = None

            @event.listens_for(engine, "begin")
            def _begin(conn):  # pragma: no cover
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        if url.startswith("postgresql"):
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://"):]
            args = {"options": f"-csearch_path={schema}"} if schema else {}
            return create_engine(url, connect_args=args, pool_size=pool_size, max_overflow=pool_size,
                                 pool_pre_ping=False)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StorageError(f"cannot open database: {exc}", artifact=_safe(url)) from None
    raise StorageError("unsupported database URL (use sqlite:/// or postgresql+psycopg://)",
                       artifact=_safe(url))


def read_engine(engine: Engine) -> Engine:
    """The engine to use for reads that write nothing.

    On PostgreSQL it runs in autocommit: a read-only request under READ COMMITTED
    gets a fresh snapshot per statement either way, so the transaction around it
    only cost two round trips (``BEGIN`` and ``ROLLBACK``).  It shares the pool of
    ``engine``.  SQLite keeps ``engine`` as it is.

    >>> import tempfile, pathlib
    >>> eng = make_engine(f"sqlite:///{pathlib.Path(tempfile.mkdtemp())}/t.db")
    >>> read_engine(eng) is eng
    True
    """
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def _safe(url: str) -> str:
    """The URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}@{host}"
    return url


def _alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest)."""
    from alembic import command

    try:
        command.upgrade(_alembic_config(engine), revision)
    except SQLAlchemyError as exc:
        raise StorageError(f"migration failed: {exc.__class__.__name__}: {exc}",
                           artifact=_safe(str(engine.url))) from None


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ping(engine: Engine) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise StorageError(f"database unreachable: {exc.__class__.__name__}",
                           artifact=_safe(str(engine.url))) from None
