"""The SQL store: the persister's schema, its Alembic migrations and the persister itself.

SQLite by default (a file next to the journal), PostgreSQL in production; one schema, one
set of migrations, SQLAlchemy Core on a synchronous engine.
"""

from mercato.adapters.sql.migrations import upgrade
from mercato.adapters.sql.persister import SqlPersister

__all__ = ["SqlPersister", "upgrade"]
