"""The ``AccountPrefs`` contract, the same for every adapter: in memory, SQLite and
PostgreSQL (``MERCATO_PG_DSN``; skipped without a server unless
``MERCATO_REQUIRE_SERVICES=1``). The SQL adapters keep everything across a reopen."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from mercato.adapters.prefs import MemoryPrefs
from mercato.adapters.sql.prefs import SqlPrefs
from mercato.adapters.sql.urls import sqlalchemy_url
from mercato.ports import AccountConfig, AccountPrefs, WatchlistRecord

PG_DSN = sqlalchemy_url(
    os.environ.get("MERCATO_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
)


def _pg_url(require_service: Callable[[str], None]) -> Iterator[str]:
    """A URL whose ``search_path`` is a fresh schema, dropped when the test ends."""
    try:
        admin = create_engine(PG_DSN, connect_args={"connect_timeout": 3})
        with admin.connect():
            pass
    except Exception as exc:
        require_service(f"PostgreSQL unreachable at MERCATO_PG_DSN={PG_DSN}: {exc}")
    schema = f"mercato_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(PG_DSN).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def make(
    request: pytest.FixtureRequest, tmp_path: Path, require_service: Callable[[str], None]
) -> Iterator[Callable[[], Any]]:
    """A function that opens the store (again: the same data, for the SQL ones)."""
    opened: list[Any] = []
    if request.param == "memory":
        mem = MemoryPrefs()
        yield lambda: mem
        return
    urls = (
        iter([f"sqlite:///{tmp_path / 'prefs.sqlite'}"])
        if request.param == "sqlite"
        else _pg_url(require_service)
    )
    url = next(urls)

    def open_() -> SqlPrefs:
        store = SqlPrefs(url)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
    for _ in urls:  # (drops the PostgreSQL schema)
        pass


def _w(wid: str, account: int, name: str, *symbols: str, at: int = 1) -> WatchlistRecord:
    return WatchlistRecord(wid, account, name, tuple(symbols), at, at)


def test_watchlists_per_account_in_creation_order(make: Callable[[], AccountPrefs]) -> None:
    s = make()
    assert s.watchlists(1) == []
    a, b = _w("a" * 8, 1, "tech", "XYZ", "ABC", at=10), _w("b" * 8, 1, "empty", at=20)
    theirs = _w("c" * 8, 2, "tech", "XYZ", at=5)
    for w in (a, b, theirs):
        s.put_watchlist(w)
    assert s.watchlists(1) == [a, b] and s.watchlists(2) == [theirs]
    renamed = WatchlistRecord(a.id, 1, "ideas", ("ABC",), 10, 30)
    s.put_watchlist(renamed)  # replaced in place, by id
    assert s.watchlists(1) == [renamed, b]
    assert not s.delete_watchlist(2, a.id)  # not account 2's
    assert s.delete_watchlist(1, a.id) and not s.delete_watchlist(1, a.id)
    assert s.watchlists(1) == [b]
    again = make()
    assert again.watchlists(1) == [b] and again.watchlists(2) == [theirs]


def test_configurations(make: Callable[[], AccountPrefs]) -> None:
    s = make()
    assert s.configs() == {}
    s.put_config(3, AccountConfig(suspend_trade=True))
    s.put_config(4, AccountConfig(fractional_trading=False))
    s.put_config(3, AccountConfig(suspend_trade=True, fractional_trading=False))
    want = {
        3: AccountConfig(suspend_trade=True, fractional_trading=False),
        4: AccountConfig(fractional_trading=False),
    }
    assert s.configs() == want
    assert make().configs() == want
