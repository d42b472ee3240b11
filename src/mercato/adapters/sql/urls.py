"""Database URLs as users write them, turned into the driver Mercato ships with."""

from __future__ import annotations


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` (libpq style) -> ``postgresql+psycopg://``.

    Mercato depends on psycopg 3; SQLAlchemy's default PostgreSQL driver is psycopg2,
    which it does not install. URLs that name a driver, and SQLite URLs, pass unchanged.
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
