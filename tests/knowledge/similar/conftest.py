from backline.storage.testdb import engine, pg_schema, sqlite_template  # noqa: F401
