"""The SQL persister against SQLite (a temp file) and PostgreSQL (``MERCATO_PG_DSN``).

A real engine runs a scripted day (an instrument, resting orders, partial and full fills,
a triggered stop-limit, a cancel, two replaces, a rejection, a halt, an end-of-day expiry);
its events are written in three batches and the tables must then say exactly what the
engine says. Re-feeding everything, or a tail of it, must change nothing.

Each PostgreSQL test runs in its own schema (``search_path``), dropped afterwards, so
parallel runs do not collide. Without a server the PostgreSQL cases skip, unless
``MERCATO_REQUIRE_SERVICES=1``, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, make_url, select, text

from mercato.adapters.sql import SqlPersister, upgrade
from mercato.adapters.sql.schema import TABLES, metadata, orders, trades
from mercato.adapters.sql.urls import sqlalchemy_url
from mercato.domain.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    EndOfDay,
    NewOrder,
    ReplaceOrder,
    SetTradingStatus,
)
from mercato.domain.events import Event, Trade
from mercato.domain.orders import OrderStatus
from mercato.domain.types import OrderType, Side, TimeInForce, TradingStatus
from mercato.engine import Engine

PG_DSN = sqlalchemy_url(
    os.environ.get("MERCATO_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
)

BUY, SELL = Side.BUY, Side.SELL
LIMIT, STOP_LIMIT = OrderType.LIMIT, OrderType.STOP_LIMIT
GTC, DAY, IOC = TimeInForce.GTC, TimeInForce.DAY, TimeInForce.IOC
S = OrderStatus


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


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, require_service: Callable[[str], None]
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'mercato.db'}"
    else:
        yield from _pg_url(require_service)


def _new(oid: int, account: int, side: int, qty: int, price: int, **kw: Any) -> NewOrder:
    kw.setdefault("type", LIMIT)
    return NewOrder(
        order_id=oid, account=account, symbol="XYZ", side=side, qty=qty, price=price, **kw
    )


SCRIPT: list[Command] = [
    AddInstrument(ts=1, symbol="XYZ", tick_size=1, lot_size=1, price_scale=2),
    _new(1, 1, SELL, 10, 100, ts=2),  # rests
    _new(2, 2, SELL, 5, 101, ts=3, tif=DAY),  # rests
    _new(3, 3, BUY, 4, 100, ts=4),  # 4 @ 100 against 1: 1 partially filled, 3 filled
    _new(9, 9, BUY, 1, 102, ts=5, type=STOP_LIMIT, stop_price=101),  # waits for 101
    _new(4, 4, BUY, 8, 101, ts=6, tif=IOC),  # 6 @ 100 (1 filled), 2 @ 101; 9 triggers, 1 @ 101
    _new(5, 5, BUY, 10, 95, ts=7),  # rests, cancelled below
    _new(6, 6, BUY, 10, 96, ts=8, tif=DAY),  # rests, replaced twice below
    ReplaceOrder(ts=9, order_id=6, symbol="XYZ", price=97, qty=7),  # loses priority
    ReplaceOrder(ts=10, order_id=6, symbol="XYZ", price=97, qty=5),  # keeps it
    _new(7, 7, SELL, 2, 97, ts=11),  # 2 @ 97 against 6: 6 has 3 left
    CancelOrder(ts=12, order_id=999, symbol="XYZ"),  # rejected: unknown order
    CancelOrder(ts=13, order_id=5, symbol="XYZ"),
    SetTradingStatus(ts=14, symbol="XYZ", status=TradingStatus.HALTED),
    SetTradingStatus(ts=15, symbol="XYZ", status=TradingStatus.OPEN),
    _new(10, 10, SELL, 3, 110, ts=16),  # rests through the end of day...
    ReplaceOrder(ts=17, order_id=10, symbol="XYZ", price=111, qty=3),  # ...as REPLACED
    _new(11, 11, BUY, 4, 90, ts=18),  # rests...
    EndOfDay(ts=19),  # expires 2 (2 left) and 6 (3 left)
    _new(12, 12, SELL, 1, 90, ts=20),  # ...and 1 @ 90 leaves 11 PARTIALLY_FILLED
]

FINAL_STATUS = {
    1: S.FILLED,
    2: S.EXPIRED,
    3: S.FILLED,
    4: S.FILLED,
    5: S.CANCELLED,
    6: S.EXPIRED,
    7: S.FILLED,
    9: S.FILLED,
    10: S.REPLACED,
    11: S.PARTIALLY_FILLED,
    12: S.FILLED,
}
FINAL_FILLED = {1: 10, 2: 3, 3: 4, 4: 8, 5: 0, 6: 2, 7: 2, 9: 1, 10: 0, 11: 1, 12: 1}


def _run() -> tuple[Engine, list[Event]]:
    engine = Engine()
    events: list[Event] = []
    for cmd in SCRIPT:
        events.extend(engine.process(cmd))
    return engine, events


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            out = {}
            for name in TABLES:
                table = metadata.tables[name]
                q = select(table).order_by(*table.primary_key.columns)
                out[name] = [tuple(r) for r in conn.execute(q)]
            return out
    finally:
        engine.dispose()


def test_persisted_tables_match_the_engine(db_url: str) -> None:
    engine, events = _run()
    p = SqlPersister(db_url)
    try:
        cut1, cut2 = len(events) // 3, 2 * len(events) // 3
        for batch in (events[:cut1], events[cut1:cut2], events[cut2:]):
            assert p.write(batch) == len(batch)
        assert p.last_seq() == engine.seq == events[-1].seq

        with p.engine.connect() as conn:
            rows = {r.order_id: r for r in conn.execute(select(orders))}
            db_trades = [tuple(r) for r in conn.execute(select(trades).order_by(trades.c.seq))]

        assert {oid: S(r.status) for oid, r in rows.items()} == FINAL_STATUS
        assert {oid: r.filled for oid, r in rows.items()} == FINAL_FILLED
        live = {int(S.ACCEPTED), int(S.PARTIALLY_FILLED), int(S.REPLACED)}
        assert {oid for oid, r in rows.items() if r.status in live} == set(engine.orders)
        for oid, o in engine.orders.items():
            r = rows[oid]
            got = (r.account, r.side, r.type, r.tif, r.price, r.stop_price, r.qty, r.filled)
            want = (o.account, o.side, o.type, o.tif, o.price, o.stop_price, o.qty, o.filled)
            assert got == want, oid
            assert r.qty - r.filled == o.remaining
            assert r.status == o.status
        assert rows[6].price == 97 and rows[6].qty == 5  # the replaces, then 2 filled
        assert rows[6].created_seq < rows[6].updated_seq

        want_trades = [
            (
                t.seq,
                t.ts,
                t.symbol,
                t.price,
                t.qty,
                t.taker_order_id,
                t.maker_order_id,
                t.taker_account,
                t.maker_account,
                t.taker_side,
            )
            for t in events
            if isinstance(t, Trade)
        ]
        assert db_trades == want_trades
        assert len(want_trades) == 6

        tables = _dump(db_url)
        assert tables["instruments"] == [("XYZ", 1, 1, 2, 0, int(TradingStatus.OPEN))]
        kinds = [row[2] for row in tables["order_events"]]
        assert kinds.count("ac") == 11 and kinds.count("rp") == 3 and kinds.count("tg") == 1
        assert kinds.count("cx") == 1 and kinds.count("rj") == 1 and kinds.count("ex") == 2

        # Replays: everything again, a tail again, and one by one: nothing changes.
        assert p.write(events) == 0
        assert p.write(events[cut1:]) == 0
        for e in events[cut2:]:
            assert p.write([e]) == 0
        assert _dump(db_url) == tables
    finally:
        p.close()

    # After a "restart", a new persister resumes: re-feeding from an earlier seq is harmless.
    more = [*events, *engine.process(_new(13, 13, BUY, 1, 111, ts=22))]
    p2 = SqlPersister(db_url)
    try:
        assert p2.write(more[cut2:]) == len(more) - len(events)
        assert p2.last_seq() == more[-1].seq
        after = _dump(db_url)
        assert after["trades"][: len(tables["trades"])] == tables["trades"]
        assert len(after["trades"]) == len(tables["trades"]) + 1
    finally:
        p2.close()


def test_upgrade_creates_the_tables_and_is_idempotent(db_url: str) -> None:
    upgrade(db_url)
    first = _dump(db_url)
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            assert set(TABLES) | {"alembic_version"} <= names
            version = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            # the migrations and schema.py describe the same tables and indexes
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            assert diff == []
        assert first["persister_state"] == [(1, 0)]
        upgrade(db_url)
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == names
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == version
        assert _dump(db_url) == first
    finally:
        engine.dispose()
