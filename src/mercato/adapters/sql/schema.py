"""The relational schema the persister writes: SQLAlchemy Core tables, one for every backend.

Money and quantities are ``BigInteger`` (the engine's scaled ints, never floats); statuses,
sides, types and TIFs keep the engine's int values (``OrderStatus``, ``Side``, ...).
This is the shape of the newest migration; the migrations themselves do not import it, so
an old revision never changes when this file does (a test compares the two).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

instruments = Table(
    "instruments",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("tick_size", BigInteger, nullable=False),
    Column("lot_size", BigInteger, nullable=False),
    Column("price_scale", Integer, nullable=False),
    Column("qty_scale", Integer, nullable=False),
    Column("status", Integer, nullable=False),  # mercato.domain.types.TradingStatus
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", BigInteger, primary_key=True, autoincrement=False),
    Column("account", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", Integer, nullable=False),
    Column("type", Integer, nullable=False),
    Column("tif", Integer, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("stop_price", BigInteger, nullable=False),
    Column("qty", BigInteger, nullable=False),  # filled + remaining, as the engine keeps it
    Column("filled", BigInteger, nullable=False),
    Column("status", Integer, nullable=False),  # mercato.domain.orders.OrderStatus
    Column("post_only", Boolean, nullable=False),
    Column("created_seq", BigInteger, nullable=False),
    Column("updated_seq", BigInteger, nullable=False),
    Index("ix_orders_account", "account"),
    Index("ix_orders_symbol_status", "symbol", "status"),
)

order_events = Table(
    "order_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("order_id", BigInteger, nullable=False),
    Column("kind", String(8), nullable=False),  # the event's tag: "ac", "cx", "rp", ...
    Column("ts", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),  # the event as a JSON object
    Index("ix_order_events_order_id", "order_id"),
)

trades = Table(
    "trades",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", BigInteger, nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("qty", BigInteger, nullable=False),
    Column("taker_order_id", BigInteger, nullable=False),
    Column("maker_order_id", BigInteger, nullable=False),
    Column("taker_account", BigInteger, nullable=False),
    Column("maker_account", BigInteger, nullable=False),
    Column("taker_side", Integer, nullable=False),
    Index("ix_trades_symbol_seq", "symbol", "seq"),
)

persister_state = Table(
    "persister_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one row
    Column("last_seq", BigInteger, nullable=False),
)

TABLES = ("instruments", "orders", "order_events", "trades", "persister_state")
