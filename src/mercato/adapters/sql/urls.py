"""Database URLs as users write them, turned into the driver Mercato ships with."""

from __future__ import annotations

import os


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` (libpq style) -> ``postgresql+psycopg://``.

    Mercato depends on psycopg 3; SQLAlchemy's default PostgreSQL driver is psycopg2,
    which it does not install. URLs that name a driver, and SQLite URLs, pass unchanged.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def private_sqlite_file(url: str) -> None:
    """For a SQLite file URL: create the file readable by its owner only (0600), or make
    it so. SQLite gives its journal and WAL files the database file's permissions."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return
    path = Path(u.database)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)
