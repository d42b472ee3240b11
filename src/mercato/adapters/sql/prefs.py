"""``AccountPrefs`` in the SQL database (the auth store's: ``users.sqlite`` beside the
journal, or PostgreSQL): watchlists and account configurations survive a restart.

Blocking (SQLAlchemy Core, synchronous engine); the service calls it from a thread. A
watchlist is one row, its symbols a JSON array (at most the service's limit of them).
"""

from __future__ import annotations

import msgspec
from sqlalchemy import Engine, create_engine, delete, insert, select, update

from mercato.adapters.sql.migrations import upgrade
from mercato.adapters.sql.schema import account_configs, watchlists
from mercato.adapters.sql.urls import private_sqlite_file, sqlalchemy_url
from mercato.ports import AccountConfig, WatchlistRecord

_symbols = msgspec.json.Decoder(tuple[str, ...])


class SqlPrefs:
    """Watchlists and configurations at ``url`` (migrated on start unless ``migrate`` is
    False)."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        private_sqlite_file(url)
        if migrate:
            upgrade(url)
        self.engine: Engine = create_engine(sqlalchemy_url(url))

    def close(self) -> None:
        self.engine.dispose()

    def watchlists(self, account: int) -> list[WatchlistRecord]:
        c = watchlists.c
        q = select(watchlists).where(c.account == account).order_by(c.created_at, c.watchlist_id)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            WatchlistRecord(
                id=r["watchlist_id"],
                account=int(r["account"]),
                name=r["name"],
                symbols=_symbols.decode(r["symbols"]),
                created_at=int(r["created_at"]),
                updated_at=int(r["updated_at"]),
            )
            for r in rows
        ]

    def put_watchlist(self, w: WatchlistRecord) -> None:
        values = {
            "account": w.account,
            "name": w.name,
            "symbols": msgspec.json.encode(w.symbols).decode(),
            "created_at": w.created_at,
            "updated_at": w.updated_at,
        }
        c = watchlists.c
        with self.engine.begin() as conn:
            done = conn.execute(update(watchlists).where(c.watchlist_id == w.id).values(values))
            if not done.rowcount:
                conn.execute(insert(watchlists).values(watchlist_id=w.id, **values))

    def delete_watchlist(self, account: int, watchlist_id: str) -> bool:
        c = watchlists.c
        q = delete(watchlists).where(c.watchlist_id == watchlist_id, c.account == account)
        with self.engine.begin() as conn:
            return bool(conn.execute(q).rowcount)

    def configs(self) -> dict[int, AccountConfig]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(account_configs)).mappings().all()
        return {
            int(r["account"]): AccountConfig(
                suspend_trade=bool(r["suspend_trade"]),
                fractional_trading=bool(r["fractional_trading"]),
            )
            for r in rows
        }

    def put_config(self, account: int, config: AccountConfig) -> None:
        values = msgspec.structs.asdict(config)
        c = account_configs.c
        with self.engine.begin() as conn:
            q = update(account_configs).where(c.account == account).values(values)
            if not conn.execute(q).rowcount:
                conn.execute(insert(account_configs).values(account=account, **values))
