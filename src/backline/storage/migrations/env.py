"""Alembic environment: the engine is handed in by ``backline.storage.db``.

Importing this module as part of the package (docs, doctests) does nothing;
Alembic runs it under its own module name.
"""

from alembic import context

from backline.storage.tables import metadata


def run() -> None:
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if __name__ != "backline.storage.migrations.env":
    run()
