"""Alembic environment: runs on the connection ``upgrade()`` hands over in ``attributes``.

Without one (the ``alembic`` command line with an ini file) it connects to
``sqlalchemy.url`` itself; offline mode prints the SQL for that URL's dialect.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from mercato.adapters.sql.schema import metadata

config = context.config


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as connection:
            context.configure(connection=connection, target_metadata=metadata)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
