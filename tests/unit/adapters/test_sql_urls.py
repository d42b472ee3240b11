from mercato.adapters.sql.urls import sqlalchemy_url


def test_libpq_style_urls_get_the_psycopg3_driver() -> None:
    assert sqlalchemy_url("postgresql://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"


def test_explicit_drivers_and_sqlite_pass_unchanged() -> None:
    for url in ("postgresql+psycopg://u@h/db", "postgresql+asyncpg://u@h/db", "sqlite:///x.db"):
        assert sqlalchemy_url(url) == url
